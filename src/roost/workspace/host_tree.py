"""Host paths opened one component at a time from a trusted directory, never through a symlink.

Seeding and `sync push` read host trees and `export` writes into a host
directory; all of them reach the host through here. A path is walked from
its anchor (`/` for the caller's own path, resolved once as given; the root
of a `ConfinedPath`) with `O_NOFOLLOW` on every component, and everything
below is reached relative to directory fds. A symlink planted anywhere on
the way (by a workspace whose files live on the host, by an earlier export,
by another user) is refused, never followed, and the file checked is the
file used. Under a `ConfinedPath`, roost's own state (its home and image
cache) is refused too, by device and inode, so a bind mount does not get
round it.

Imports: roost.confinement, roost.config, roost.errors and the standard library.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from roost.config import images_dir
from roost.confinement import ConfinedPath, HostArg
from roost.errors import InvalidArgument, NotFound, RoostError

__all__ = [
    "DIR_FLAGS",
    "ENTRY_FLAGS",
    "HostPath",
    "host_path",
    "open_below",
    "open_entry",
    "open_parent",
]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a fifo swapped in for a file must not hang the open.
ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
NOT_ALLOWED = "path_not_allowed"
LINK_HINT = "roost does not follow symbolic links inside host paths; name the real path"
STATE_HINT = "roost's own state directory and image cache are never read or written through a host path"


@dataclass(frozen=True)
class HostPath:
    """A host path as roost walks it: `parts` below `anchor`, `shown` as the caller named it.

    `protected` holds the (device, inode) of directories the walk must never
    enter (roost's own state, for confined paths).
    """

    anchor: str
    parts: tuple[str, ...]
    shown: str
    protected: frozenset[tuple[int, int]] = field(default=frozenset())

    def check(self, fd: int) -> None:
        """Raises: InvalidArgument: path_not_allowed when `fd` is a protected directory."""
        if self.protected:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in self.protected:
                raise InvalidArgument(
                    f"{self.shown!r} leads into roost's own state directory", code=NOT_ALLOWED, hint=STATE_HINT
                )


def _identities(paths: tuple[Path, ...]) -> frozenset[tuple[int, int]]:
    found = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def host_path(path: HostArg, *, home: Path, output: bool = False) -> HostPath:
    """How to walk `path`.

    A `ConfinedPath` is walked from its root and may not enter `home` or its
    image cache. Any other path is the caller's own: it is resolved once
    (`~`, a relative path, symlinks in the path itself), and nothing is
    followed after that. With `output`, the last component is a name to
    create, so it is not resolved: a symlink there is an existing path.

    Raises:
        InvalidArgument: an empty path or one holding NUL.
    """
    if isinstance(path, ConfinedPath):
        return HostPath(path.root, path.parts, path.shown, _identities((home, images_dir(home))))
    given = os.fspath(path)
    if not given or "\0" in given:
        raise InvalidArgument(f"{given!r} is not a usable host path", hint="give a non-empty path")
    absolute = os.path.abspath(os.path.expanduser(given))
    if output:
        real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    else:
        real = os.path.realpath(absolute)
    return HostPath("/", tuple(p for p in real.split("/") if p), given)


def _walk_error(exc: OSError, where: HostPath, parent_fd: int, parts: tuple[str, ...], missing: str) -> RoostError:
    """The error for failing to open `parts[-1]` in `parent_fd` on the way along `where`."""
    shown = where.shown
    if exc.errno == errno.ENOENT:
        return NotFound(f"{shown!r} does not exist", code=missing, hint="give an existing path")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        try:
            is_link = stat.S_ISLNK(os.lstat(parts[-1], dir_fd=parent_fd).st_mode)
        except OSError:
            is_link = False
        below = "/".join(parts)
        if is_link:
            return InvalidArgument(
                f"{shown!r} passes through the symbolic link {below!r}", code=NOT_ALLOWED, hint=LINK_HINT
            )
        return InvalidArgument(f"{below!r} in {shown!r} is not a directory", code="not_a_directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InvalidArgument(f"permission denied opening {shown!r}", code="permission_denied")
    return InvalidArgument(f"cannot open {shown!r}: {exc.strerror or exc}", code="host_path_unusable")


def open_parent(where: HostPath, *, missing: str) -> int:
    """A directory fd for everything but the last part of `where` (its anchor when there is one part or none).

    Raises:
        NotFound: `missing` when a component does not exist.
        InvalidArgument: path_not_allowed (a symlink or roost's own state on the way),
            not_a_directory, permission_denied.
    """
    try:
        fd = os.open(where.anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # trusted as given
    except OSError as exc:
        raise _walk_error(exc, where, -1, (where.anchor,), missing) from None
    try:
        where.check(fd)
        for i, part in enumerate(where.parts[:-1]):
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _walk_error(exc, where, fd, where.parts[: i + 1], missing) from None
            os.close(fd)
            fd = child
            where.check(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_entry(where: HostPath, *, missing: str) -> tuple[int, os.stat_result]:
    """An fd on whatever `where` names (a directory or a file, never a symlink) and its fstat.

    Raises:
        NotFound: `missing` when it does not exist.
        InvalidArgument: as `open_parent`.
    """
    parent = open_parent(where, missing=missing)
    if not where.parts:
        return parent, os.fstat(parent)
    name = where.parts[-1]
    try:
        # Looked at before opening: opening a device can have effects of its own.
        mode = os.lstat(name, dir_fd=parent).st_mode
        if stat.S_ISLNK(mode):
            raise InvalidArgument(f"{where.shown!r} is a symbolic link", code=NOT_ALLOWED, hint=LINK_HINT)
        if not _readable_kind(mode):
            raise InvalidArgument(
                f"{where.shown!r} is neither a directory nor a regular file", code="host_path_unusable"
            )
        fd = os.open(name, ENTRY_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise _walk_error(exc, where, parent, where.parts, missing) from None
    finally:
        os.close(parent)
    try:
        st = os.fstat(fd)
        if not _readable_kind(st.st_mode):
            raise InvalidArgument(f"{where.shown!r} changed while roost opened it", code="host_path_unusable")
        if stat.S_ISDIR(st.st_mode):
            where.check(fd)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_below(dir_fd: int, parts: tuple[str, ...] | list[str]) -> int:
    """A new fd of the directory `parts` below `dir_fd`, never through a symlink (`dir_fd` stays open).

    Raises:
        OSError: a component is missing, not a directory, or a symlink (ELOOP/ENOTDIR).
    """
    fd = os.dup(dir_fd)
    try:
        for part in parts:
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _readable_kind(mode: int) -> bool:
    return stat.S_ISDIR(mode) or stat.S_ISREG(mode)
