"""Secrets for one process: env-mode values in its environment, file-mode values in 0400 files on a tmpfs.

The files of one process live in a directory of their own (0700, a random
name) under `/dev/shm`, a tmpfs on every backend (never `/workspace`, never
the agent's state on disk), and are removed with it when the process ends.
Values are only ever in the process's environment (never the agent's own,
nor PID 1's) and in those files; nothing here logs or records them.

Imports: protocol's op messages and the standard library only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence

from roost.protocol import Code, OpError
from roost.protocol.ops.secrets import SecretGrant
from roost.protocol.redaction import Redactor, StreamRedactor

__all__ = ["SECRET_FILES_ROOT", "ProcessSecrets"]

SECRET_FILES_ROOT = "/dev/shm"


class ProcessSecrets:
    """What the grants of one process put in place: `env` to add to its environment, files to remove later."""

    def __init__(self, grants: Sequence[SecretGrant], root: str = SECRET_FILES_ROOT) -> None:
        self.env: dict[str, str] = {}
        self.directory: str | None = None
        # Kept only by a service's grants' owner, for its log redaction; gone with this object.
        self._values = {grant.name: grant.raw() for grant in grants}
        try:
            for grant in grants:
                if grant.mode == "env":
                    self.env[grant.variable] = os.fsdecode(grant.raw())
                else:
                    self.env[grant.variable] = self._write_file(grant, root)
        except BaseException:
            self.remove()
            raise

    def _write_file(self, grant: SecretGrant, root: str) -> str:
        if self.directory is None:
            try:
                self.directory = tempfile.mkdtemp(prefix="roost-secrets-", dir=root)
            except OSError as exc:
                raise OpError(
                    Code.INVALID_ARGUMENT,
                    f"cannot make a directory for secret files under {root}: {exc.strerror}",
                    hint="file-mode secrets need a writable tmpfs at /dev/shm in the workspace",
                ) from None
        path = os.path.join(self.directory, grant.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
        try:
            os.write(fd, grant.raw())
        finally:
            os.close(fd)
        return path

    def log_redactors(self) -> dict[str, StreamRedactor[bytes]]:
        """A stream redactor of these secrets for each of a service's log streams (none: no secrets)."""
        redactor = Redactor(self._values)
        return {stream: redactor.stream() for stream in ("stdout", "stderr")} if redactor.active else {}

    def merged(self, env: dict[str, str]) -> dict[str, str]:
        """`env` with the secrets' variables over it (a new dict: the agent's own is never touched)."""
        return {**env, **self.env}

    def remove(self) -> None:
        """Remove the files (idempotent); the environment went with the process."""
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
