"""Confinement of guest paths to the workspace root.

Callers name paths as the workspace sees them: ``/workspace/src/a.py`` or
``src/a.py``. `WorkspacePaths` keeps one open descriptor of the root and
resolves every path from it with `Beneath` (component by component, links
followed only while they stay inside), handing back open directories, never
a string to look up again: what was checked is what gets used. Errors are
translated here, once, into the agent's codes and messages.

Imports: protocol, the agent's file-system layer (`roost.agent.fs`) and the standard library only.
"""

from __future__ import annotations

import errno
import os
import posixpath
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from roost.agent.fs.resolve import Beneath, Location
from roost.protocol import Code, OpError
from roost.protocol.messages import GUEST_ROOT

OUTSIDE_HINT = "symlinks are never followed out of the workspace"


@dataclass(frozen=True)
class Opened:
    """An open descriptor of a guest path and the root-relative path it was found at."""

    fd: int
    rel: str


class WorkspacePaths:
    """Resolves guest paths under one workspace root directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._fd: int | None = None
        self._lock = threading.Lock()

    # -- the root ---------------------------------------------------------------
    def root_fd(self) -> int:
        """The root, opened once (O_PATH) and kept: every lookup starts here."""
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                weakref.finalize(self, os.close, self._fd)
            return self._fd

    def beneath(self) -> Beneath:
        return Beneath(self.root_fd(), GUEST_ROOT)

    # -- names -----------------------------------------------------------------
    def relative(self, path: str) -> str:
        """Normalise a guest path to a root-relative one ('' is the root itself).

        Raises:
            OpError: path_outside_workspace for anything not under /workspace.
        """
        if not isinstance(path, str) or not path or "\0" in path:
            raise OpError(Code.INVALID_ARGUMENT, "path must be a non-empty string without NUL bytes")
        joined = path if path.startswith("/") else posixpath.join(GUEST_ROOT, path)
        norm = posixpath.normpath(joined)
        if norm == GUEST_ROOT:
            return ""
        if not norm.startswith(GUEST_ROOT + "/"):
            raise OpError(
                Code.PATH_OUTSIDE_WORKSPACE,
                f"{path!r} is outside {GUEST_ROOT}",
                hint=f"give a path under {GUEST_ROOT} or one relative to it",
            )
        return norm[len(GUEST_ROOT) + 1 :]

    @staticmethod
    def to_guest(rel: str) -> str:
        """The guest spelling of a root-relative path."""
        return f"{GUEST_ROOT}/{rel}" if rel else GUEST_ROOT

    # -- lookups -----------------------------------------------------------------
    @contextmanager
    def locate(
        self, path: str, *, follow_final: bool = True, make_parents: bool = False, follow_links: bool = True
    ) -> Iterator[Location]:
        """The open parent directory and final name of guest `path`, for *at calls.

        A final symlink is followed (within the workspace) unless
        `follow_final` is false; `make_parents` creates missing parents;
        `follow_links=False` refuses any symlink on the way (for paths a scan
        found, which hold none unless the workspace changed them since).

        Raises:
            OpError: path_outside_workspace, path_not_found (a parent), not_a_directory (a parent),
                invalid_argument (too many links).
        """
        rel = self.relative(path)
        resolver = self.beneath()
        try:
            found = resolver.locate(rel, follow_final=follow_final, make_dirs=make_parents, follow_links=follow_links)
        except OSError as exc:
            raise self.error(exc, path) from None
        try:
            yield found
        finally:
            resolver.release(found)

    @contextmanager
    def opened(self, path: str, flags: int, *, make_dirs: bool = False, follow_links: bool = True) -> Iterator[Opened]:
        """Guest `path` opened with `flags` (never through a link out); closed afterwards.

        Raises:
            OpError: as `locate`, and path_not_found, not_a_directory, permission_denied for the open.
        """
        rel = self.relative(path)
        try:
            fd, found = self.beneath().open(rel, flags, make_dirs=make_dirs, follow_links=follow_links)
        except OSError as exc:
            raise self.error(exc, path) from None
        try:
            yield Opened(fd, found)
        finally:
            os.close(fd)

    @contextmanager
    def directory(self, path: str) -> Iterator[Opened]:
        """A working directory: guest `path` opened as a directory (O_PATH), for `dirfd.fd_path`.

        Raises:
            OpError: path_not_found when it is missing or not a directory, path_outside_workspace.
        """
        try:
            with self.opened(path, os.O_PATH | os.O_DIRECTORY) as found:
                yield found
        except OpError as exc:
            if exc.code not in (Code.PATH_NOT_FOUND, Code.NOT_A_DIRECTORY):
                raise
            raise OpError(Code.PATH_NOT_FOUND, f"working directory {path!r} does not exist") from None

    def exists(self, path: str) -> bool:
        """Whether guest `path` names something (following links inside the workspace).

        Raises:
            OpError: path_outside_workspace and the other lookup errors of `locate`.
        """
        try:
            with self.locate(path) as found:
                return found.st is not None
        except OpError as exc:
            if exc.code in (Code.PATH_NOT_FOUND, Code.NOT_A_DIRECTORY):
                return False
            raise

    # -- errors -------------------------------------------------------------------
    @staticmethod
    def error(exc: OSError, path: str) -> Exception:
        """The agent's error for an OS failure on guest `path` (the failure itself when it is not about paths)."""
        if exc.errno == errno.EXDEV:
            return OpError(
                Code.PATH_OUTSIDE_WORKSPACE, f"{path!r} resolves outside {GUEST_ROOT} through a symlink", OUTSIDE_HINT
            )
        if exc.errno == errno.ENOENT:
            return OpError(Code.PATH_NOT_FOUND, f"{path} does not exist")
        if exc.errno == errno.ENOTDIR:
            return OpError(Code.NOT_A_DIRECTORY, f"a parent of {path} is not a directory")
        if exc.errno == errno.EISDIR:
            return OpError(Code.IS_A_DIRECTORY, f"{path} is a directory")
        if exc.errno == errno.ELOOP:
            return OpError(Code.INVALID_ARGUMENT, f"{path}: {exc.strerror}", hint="is there a symlink loop?")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return OpError(Code.PERMISSION_DENIED, f"permission denied: {path}")
        if exc.errno == errno.ENAMETOOLONG:
            return OpError(Code.INVALID_ARGUMENT, f"{path}: a name in it is too long")
        return exc
