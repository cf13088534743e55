"""Path lookup beneath an open directory, one component at a time, never through a link out of it.

`Beneath` resolves a relative path from a directory fd (the workspace root,
or a staging directory) the way the kernel would, except that it does the
walk itself: every component is opened with O_NOFOLLOW relative to the one
before it, so a symlink is always seen as a symlink. A link is followed only
by reading its target and walking that, still beneath the same directory,
at most MAX_LINK_HOPS times; '..' never climbs above the top; an absolute
target is walked from the top when it starts with the top's guest name
(`/workspace`) and refused otherwise. Nothing is looked up by a string from
'/', so a directory swapped for a symlink between two calls can make a
lookup fail, but never leave the tree. This is openat2's RESOLVE_IN_ROOT
done portably (guests may run kernels without openat2), with an escape
refused instead of clamped.

Failures are the kernel's: FileNotFoundError and NotADirectoryError for a
missing or non-directory parent, OSError(ELOOP) for too many links (or any
link when links are not followed), OSError(EXDEV) for a path that leads out,
as openat2 reports it. Translating them for a user is the caller's job.

Imports: the standard library only.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from dataclasses import dataclass

# The kernel gives up after 40 links in one lookup; so does this walk.
MAX_LINK_HOPS = 40
# Directories made on the way (make_dirs): a bound so a workspace deleting them as fast can't spin a lookup.
MAX_MADE_DIRS = 4096
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Location:
    """Where a path ends: its final `name` inside the open directory `dir_fd`.

    `rel` is the path from the top after following links ('' is the top
    itself, whose `name` is '.'). `st` is the lstat of the final entry at
    lookup time, None when it does not exist. Use it with the *at forms:
    dir_fd=..., follow_symlinks=False, O_NOFOLLOW.
    """

    dir_fd: int
    name: str
    rel: str
    st: os.stat_result | None


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class _Walk:
    """The directories opened so far on one lookup: fds[0] is the top (not ours to close)."""

    def __init__(self, top_fd: int, alias: str | None, follow_links: bool, make_dirs: bool) -> None:
        self.fds = [top_fd]
        self.names: list[str] = []
        self.alias = alias
        self.follow_links = follow_links
        self.make_dirs = make_dirs
        self.hops = 0
        self.made = 0

    @property
    def fd(self) -> int:
        return self.fds[-1]

    def rel(self, name: str | None = None) -> str:
        return "/".join(self.names if name is None else [*self.names, name])

    def up(self) -> None:
        if not self.names:
            raise OSError(errno.EXDEV, "'..' leads above the top")
        self.names.pop()
        os.close(self.fds.pop())

    def to_top(self) -> None:
        while self.names:
            self.up()

    def follow(self, name: str, todo: deque[str]) -> None:
        """Queue the target of the link `name` in place of it."""
        self.hops += 1
        if not self.follow_links:
            raise OSError(errno.ELOOP, f"{self.rel(name)!r} is a symlink")
        if self.hops > MAX_LINK_HOPS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links")
        try:
            target = os.readlink(name, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            todo.appendleft(name)  # no longer a link: look again (the hop count bounds this)
            return
        if target.startswith("/"):
            alias = self.alias
            if alias is None or not (target == alias or target.startswith(alias + "/")):
                raise OSError(errno.EXDEV, f"{self.rel(name)!r} points outside: {target!r}")
            self.to_top()
            target = target[len(alias) :]
        todo.extendleft(reversed(_parts(target)))

    def make(self, name: str, todo: deque[str]) -> None:
        self.made += 1
        if self.made > MAX_MADE_DIRS:
            raise FileNotFoundError(errno.ENOENT, f"{self.rel(name)!r} keeps disappearing")
        try:
            os.mkdir(name, 0o777, dir_fd=self.fd)
        except FileExistsError:
            pass  # made meanwhile by someone else: open whatever it is, as any other entry
        todo.appendleft(name)

    def step(self, name: str, flags: int, todo: deque[str]) -> int | None:
        """Open `name` here with `flags` (O_NOFOLLOW in them); None when something else was queued instead.

        A link is never opened: its target is queued in its place. A missing
        directory is made and queued again when `make_dirs` says so.
        """
        try:
            fd = os.open(name, flags, dir_fd=self.fd)
        except FileNotFoundError:
            if not self.make_dirs:
                raise
            self.make(name, todo)
            return None
        except OSError as exc:
            # O_NOFOLLOW met a link (ELOOP; ENOTDIR when O_DIRECTORY is checked first), or a non-directory.
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = _lstat(name, self.fd)
            if st is not None and stat.S_ISLNK(st.st_mode):
                self.follow(name, todo)
                return None
            if st is not None:
                raise
            self.hops += 1  # gone since the open: look again, a bounded number of times
            if self.hops > MAX_LINK_HOPS:
                raise FileNotFoundError(errno.ENOENT, f"{self.rel(name)!r} keeps changing") from None
            todo.appendleft(name)
            return None
        if flags & os.O_PATH and not flags & os.O_DIRECTORY and stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)  # O_PATH|O_NOFOLLOW opens a link itself
            self.follow(name, todo)
            return None
        return fd

    def enter(self, name: str, todo: deque[str]) -> None:
        """Step into the directory `name`, or queue what replaces it (a link's target, a made dir)."""
        fd = self.step(name, DIR_FLAGS, todo)
        if fd is not None:
            self.fds.append(fd)
            self.names.append(name)

    def to_last(self, todo: deque[str]) -> str | None:
        """Walk all queued components but the last and return it; None when the path ends on an open directory."""
        while todo:
            name = todo.popleft()
            if name == "..":
                self.up()
            elif todo:
                self.enter(name, todo)
            else:
                return name
        return None

    def close(self, keep: int = -1) -> None:
        for fd in self.fds[1:]:
            if fd != keep:
                os.close(fd)
        self.fds = self.fds[:1]


class Beneath:
    """Lookups confined to the tree under `top_fd`, which the caller keeps open.

    `alias` is the absolute name the top has for the paths inside it
    (`/workspace`); absolute link targets under it are walked from the top.
    With `alias=None` every absolute target leads out.
    """

    def __init__(self, top_fd: int, alias: str | None = None) -> None:
        self.top_fd = top_fd
        self.alias = alias

    def locate(
        self, path: str, *, follow_final: bool = True, make_dirs: bool = False, follow_links: bool = True
    ) -> Location:
        """The parent directory and final name of `path` (relative to the top).

        `follow_final` follows a final symlink (still beneath the top);
        `make_dirs` creates missing parent directories; `follow_links=False`
        refuses every symlink on the way (ELOOP). The caller closes
        `Location.dir_fd` with `release` when done.

        Raises:
            FileNotFoundError, NotADirectoryError: a parent is missing or not a directory.
            OSError: ELOOP (links), EXDEV (the path leads out of the tree).
        """
        walk = _Walk(self.top_fd, self.alias, follow_links, make_dirs)
        todo = deque(_parts(path))
        try:
            while (name := walk.to_last(todo)) is not None:
                st = _lstat(name, walk.fd)
                if follow_final and st is not None and stat.S_ISLNK(st.st_mode):
                    walk.follow(name, todo)
                    continue
                found = Location(walk.fd, name, walk.rel(name), st)
                walk.close(keep=walk.fd)
                return found
            # The path ended on a directory already open ('', '..' or a link to a directory above).
            if not walk.names:
                return Location(self.top_fd, ".", "", os.fstat(self.top_fd))
            name = walk.names[-1]
            walk.up()
            found = Location(walk.fd, name, walk.rel(name), _lstat(name, walk.fd))
            walk.close(keep=walk.fd)
            return found
        except BaseException:
            walk.close()
            raise

    def open(self, path: str, flags: int, *, make_dirs: bool = False, follow_links: bool = True) -> tuple[int, str]:
        """Open `path` with `flags` (O_NOFOLLOW is added), following links beneath the top; return (fd, rel).

        With `make_dirs` and O_DIRECTORY in `flags`, the directory and its
        missing parents are created. The caller closes the fd.

        Raises:
            FileNotFoundError, NotADirectoryError, OSError: as `locate`, and what open(2) says.
        """
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC
        wants_dir = bool(flags & os.O_DIRECTORY)
        walk = _Walk(self.top_fd, self.alias, follow_links, make_dirs and wants_dir)
        todo = deque(_parts(path))
        try:
            while (name := walk.to_last(todo)) is not None:
                fd = walk.step(name, flags, todo)
                if fd is not None:
                    return fd, walk.rel(name)
            return os.open(".", flags, dir_fd=walk.fd), walk.rel()
        finally:
            walk.close()

    def release(self, location: Location) -> None:
        """Close what `locate` opened (the top itself stays open)."""
        if location.dir_fd != self.top_fd:
            os.close(location.dir_fd)
