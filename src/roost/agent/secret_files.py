"""Secrets for one process: env-mode values in its environment, file-mode values in 0400 files on a tmpfs.

A file-mode secret is written, by default, in a directory of its own (0700,
a random name) under `/dev/shm`, a tmpfs on every backend; a process may name
its path instead, which must be on a tmpfs, outside the workspace, and new.
Never `/workspace`, never the agent's state on disk. A file is made inside
its directory as opened (an fd), and a named path is judged where that
directory really is, so the workspace cannot swap a checked path for a link
before the file is written. The files are removed
when the process ends. Values are only ever in the process's environment
(never the agent's own, nor PID 1's) and in those files; nothing here logs
or records them.

Imports: the agent's file-system layer (dirfd), protocol (the op messages, redaction) and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence

from roost.agent.fs.dirfd import NEW_FILE_FLAGS, fd_path
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
        self._workspace_root = workspace_root
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
        directory = os.open(self.directory, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _write_new(directory, grant.name, grant.raw())
        finally:
            os.close(directory)
        return os.path.join(self.directory, grant.name)

    def _write_at(self, grant: SecretGrant, path: str) -> str:
        parent = os.path.realpath(os.path.dirname(os.path.normpath(path)))
        name = os.path.basename(os.path.normpath(path))
        self._check_place(grant, path, parent, name)  # a clear refusal before anything is opened
        try:
            directory = os.open(parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _cannot_create(grant, path, exc) from None
        try:
            # Judged again where the directory opened really is: what is written below goes there.
            real = os.readlink(fd_path(directory))
            self._check_place(grant, path, real, name)
            try:
                _write_new(directory, name, grant.raw())
            except OSError as exc:
                raise _cannot_create(grant, path, exc) from None
        finally:
            os.close(directory)
        where = os.path.join(real, name)
        self.files.append(where)
        return where

    def _check_place(self, grant: SecretGrant, path: str, parent: str, name: str) -> None:
        where = os.path.join(parent, name)
        # Resolved here, not up front: most processes get no secret file at a path, and every exec would pay.
        forbidden = {os.path.realpath(GUEST_ROOT), os.path.realpath(self._workspace_root)}
        if any(where == root or where.startswith(root.rstrip("/") + "/") for root in forbidden):
            raise OpError(Code.INVALID_ARGUMENT, f"secret {grant.name!r}: {path} is in the workspace", hint=_PATH_HINT)
        if filesystem_of(parent) != "tmpfs":
            raise OpError(Code.INVALID_ARGUMENT, f"secret {grant.name!r}: {path} is not on a tmpfs", hint=_PATH_HINT)

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


def _cannot_create(grant: SecretGrant, path: str, exc: OSError) -> OpError:
    return OpError(
        Code.INVALID_ARGUMENT, f"secret {grant.name!r}: cannot create {path}: {exc.strerror}", hint=_PATH_HINT
    )


def _write_new(directory: int, name: str, data: bytes) -> None:
    """Write `data` to a new 0400 file `name` in open `directory` (never through a link, never over a file)."""
    fd = os.open(name, NEW_FILE_FLAGS, 0o400, dir_fd=directory)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
