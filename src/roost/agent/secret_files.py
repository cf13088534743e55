"""Secrets for one process: env-mode values in its environment, file-mode values in 0400 files on a tmpfs.

A file-mode secret is written, by default, in a directory of its own (0700,
a random name) under `/dev/shm`, a tmpfs on every backend; a process may name
its path instead, which must be on a tmpfs, outside the workspace, and new.
Never `/workspace`, never the agent's state on disk. The files are removed
when the process ends. Values are only ever in the process's environment
(never the agent's own, nor PID 1's) and in those files; nothing here logs
or records them.

Imports: protocol (the op messages, redaction) and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence

from roost.protocol import Code, OpError
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.secrets import SecretGrant
from roost.protocol.redaction import Redactor, StreamRedactor

__all__ = ["SECRET_FILES_ROOT", "ProcessSecrets", "filesystem_of"]

SECRET_FILES_ROOT = "/dev/shm"
_PATH_HINT = "name a new file on a tmpfs outside the workspace (e.g. under /dev/shm or /run), or leave the path out"


def filesystem_of(path: str, mounts: str = "/proc/self/mounts") -> str | None:
    """The type of the file system `path` (a real path) is on: the longest mount point above it wins."""
    best, kind = "", None
    with contextlib.suppress(OSError), open(mounts) as table:
        for line in table:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = fields[1].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


class ProcessSecrets:
    """What the grants of one process put in place: `env` to add to its environment, files to remove later.

    `workspace_root`: where the workspace's files really are, refused as a place for a secret file.
    """

    def __init__(
        self, grants: Sequence[SecretGrant], root: str = SECRET_FILES_ROOT, workspace_root: str = GUEST_ROOT
    ) -> None:
        self.env: dict[str, str] = {}
        self.directory: str | None = None
        self.files: list[str] = []
        # Kept only by a service's grants' owner, for its log redaction; gone with this object.
        self._values = {grant.name: grant.raw() for grant in grants}
        self._forbidden = {os.path.realpath(GUEST_ROOT), os.path.realpath(workspace_root)}
        try:
            for grant in grants:
                if grant.mode == "env":
                    self.env[grant.variable] = os.fsdecode(grant.raw())
                elif grant.path is not None:
                    self.env[grant.variable] = self._write_at(grant, grant.path)
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
        _write_new(path, grant.raw())
        return path

    def _write_at(self, grant: SecretGrant, path: str) -> str:
        parent = os.path.realpath(os.path.dirname(os.path.normpath(path)))
        where = os.path.join(parent, os.path.basename(os.path.normpath(path)))
        if any(where == root or where.startswith(root.rstrip("/") + "/") for root in self._forbidden):
            raise OpError(Code.INVALID_ARGUMENT, f"secret {grant.name!r}: {path} is in the workspace", hint=_PATH_HINT)
        if filesystem_of(parent) != "tmpfs":
            raise OpError(Code.INVALID_ARGUMENT, f"secret {grant.name!r}: {path} is not on a tmpfs", hint=_PATH_HINT)
        try:
            _write_new(where, grant.raw())
        except OSError as exc:
            raise OpError(
                Code.INVALID_ARGUMENT, f"secret {grant.name!r}: cannot create {path}: {exc.strerror}", hint=_PATH_HINT
            ) from None
        self.files.append(where)
        return where

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
        files, self.files = self.files, []
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _write_new(path: str, data: bytes) -> None:
    """Write `data` to a new 0400 file at `path` (never through a link, never over a file that is there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
