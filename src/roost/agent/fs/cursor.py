"""Directory fds held open along a run of paths, for work over many paths of one tree.

A reset or a snapshot touches thousands of paths in sorted order, most of
them in a directory the path before was in too. `DirCursor` keeps the
directories of the current path open and, for the next path, closes only
what it leaves and opens only what it enters: each directory relative to
its parent with O_NOFOLLOW, so a directory swapped for a symlink is refused
(ELOOP or ENOTDIR), never followed, exactly as `Beneath.locate` does with
`follow_links=False`, at a fraction of the system calls.

Imports: the standard library only.
"""

from __future__ import annotations

import errno
import os
import stat

DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class DirCursor:
    """The open parent directories of root-relative paths under `top_fd` (which the caller keeps open).

    With `make`, missing directories on the way are created with
    `make_mode` (before the umask; callers that care set the mode they
    want afterwards). Use as a context manager, or call `close`.
    """

    def __init__(self, top_fd: int, *, make: bool = False, make_mode: int = 0o700) -> None:
        self._top = top_fd
        self._make = make
        self._make_mode = make_mode
        self._names: list[str] = []
        self._fds: list[int] = []

    def __enter__(self) -> DirCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parent(self, rel: str) -> tuple[int, str]:
        """(open directory, final name) of the root-relative path `rel`.

        The directory fd stays valid until the next call or `close`.

        Raises:
            FileNotFoundError: a parent is missing (and `make` is off).
            OSError: ELOOP or ENOTDIR when a parent is a symlink or not a directory.
        """
        *parts, name = rel.split("/")
        keep = 0
        while keep < len(parts) and keep < len(self._names) and parts[keep] == self._names[keep]:
            keep += 1
        self._leave(keep)
        for part in parts[keep:]:
            self._enter(part)
        return (self._fds[-1] if self._fds else self._top), name

    def _enter(self, name: str) -> None:
        at = self._fds[-1] if self._fds else self._top
        try:
            fd = self._open(name, at)
        except FileNotFoundError:
            if not self._make:
                raise
            try:
                os.mkdir(name, self._make_mode, dir_fd=at)
            except FileExistsError:
                pass  # made meanwhile: open whatever it is, with the same checks
            fd = self._open(name, at)
        self._fds.append(fd)
        self._names.append(name)

    @staticmethod
    def _open(name: str, at: int) -> int:
        try:
            return os.open(name, DIR_FLAGS, dir_fd=at)
        except NotADirectoryError:
            # O_DIRECTORY is checked before O_NOFOLLOW: a link says ENOTDIR. Say ELOOP, as for any link.
            if stat.S_ISLNK(os.stat(name, dir_fd=at, follow_symlinks=False).st_mode):
                raise OSError(errno.ELOOP, f"{name!r} is a symlink") from None
            raise

    def _leave(self, keep: int) -> None:
        while len(self._fds) > keep:
            os.close(self._fds.pop())
            self._names.pop()

    def close(self) -> None:
        self._leave(0)
