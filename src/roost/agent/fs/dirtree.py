"""Walking a directory tree through directory fds, never through a symlink.

`walk` visits every entry under an open directory depth-first, parents
before children. Each directory is opened relative to its parent with
O_NOFOLLOW, so a directory swapped for a symlink after it was listed is
skipped, not followed; only the directories on the current path are held
open, so a wide tree costs no more descriptors than a deep one. A `Pruner`
(ignore rules) sees each directory as the walk enters it and may leave any
entry out; a directory it leaves out is never opened.

Standard library only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import NamedTuple, Protocol

DIR_READ_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Found(NamedTuple):
    """One entry: its path from the top, its name in `dir_fd` and its lstat.

    `dir_fd` stays open only until the walk moves on. A NamedTuple, not a
    dataclass: a scan makes one per path, and this is several times cheaper.
    """

    rel: str
    name: str
    dir_fd: int
    st: os.stat_result


class Pruner(Protocol):
    """Decides which entries a walk leaves out. `prefix` is the directory's path from the top plus "/" ("" for the top)."""

    def enter(self, prefix: str, dir_fd: int) -> None:
        """The walk is about to judge the entries of this directory (open as `dir_fd` for the call only)."""

    def excluded(self, prefix: str, name: str, is_dir: bool) -> bool:
        """Whether entry `name` of directory `prefix` is left out, with all it holds."""


def _entries(fd: int, ordered: bool) -> list[os.DirEntry[str]]:
    with os.scandir(fd) as it:
        entries = list(it)
    if ordered:
        entries.sort(key=lambda e: os.fsencode(e.name))
    return entries


# Per open directory on the current path: its fd, its path prefix, its entries, and what of `after` still applies there.
_Open = tuple[int, str, Iterator[os.DirEntry[str]], tuple[bytes, ...] | None]


def walk(
    top_fd: int,
    *,
    exclude: frozenset[str] = frozenset(),
    ordered: bool = False,
    after: tuple[bytes, ...] | None = None,
    prune: Pruner | None = None,
) -> Iterator[Found]:
    """Every entry under the directory `top_fd` (which must be readable, and stays open).

    `exclude` names paths (relative to the top) to skip with all they hold;
    `prune` leaves out whatever it judges excluded; `ordered` sorts each
    directory's entries by the bytes of their names, so the walk is in tree
    order. `after` (the components of a path, as bytes) resumes an ordered
    walk after that path: what comes before it in tree order is skipped,
    whole directories at a time. Directories that cannot be read, and entries
    gone before they are looked at, are skipped.
    """
    ordered = ordered or after is not None
    stack: list[_Open] = []
    try:
        stack.append((top_fd, "", iter(_entries(top_fd, ordered)), after or None))
        if prune is not None:
            prune.enter("", top_fd)
        yield from _walk(stack, top_fd, exclude, ordered, prune)
    finally:
        for fd, _, _, _ in stack:
            if fd != top_fd:
                os.close(fd)


def _walk(
    stack: list[_Open], top_fd: int, exclude: frozenset[str], ordered: bool, prune: Pruner | None
) -> Iterator[Found]:
    """`walk`'s loop: entries of the directory on top of `stack`, descending into each subdirectory as it comes."""
    while stack:
        fd, prefix, entries, resume = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            if fd != top_fd:
                os.close(fd)
            continue
        rel = prefix + entry.name
        if rel in exclude:
            continue
        inside: tuple[bytes, ...] | None = None
        seen = False
        if resume is not None:
            name = os.fsencode(entry.name)
            if name < resume[0]:
                continue  # it and all it holds come before `after`
            if name == resume[0]:
                seen, inside = True, resume[1:] or None  # `after` is this entry or below it
            else:
                stack[-1] = (fd, prefix, entries, None)  # everything from here on comes after
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while we looked
        if prune is not None and prune.excluded(prefix, entry.name, stat.S_ISDIR(st.st_mode)):
            continue
        if not seen:
            yield Found(rel, entry.name, fd, st)
        if not stat.S_ISDIR(st.st_mode):
            continue
        opened = _open_dir(fd, entry.name, ordered)
        if opened is None:
            continue
        stack.append((opened[0], rel + "/", iter(opened[1]), inside))
        if prune is not None:
            prune.enter(rel + "/", opened[0])


def _open_dir(parent_fd: int, name: str, ordered: bool) -> tuple[int, list[os.DirEntry[str]]] | None:
    """Subdirectory `name` opened without following a link, and its entries; None if it cannot be read."""
    try:
        child = os.open(name, DIR_READ_FLAGS, dir_fd=parent_fd)
    except OSError:
        return None  # unreadable, gone, or no longer a directory (a link now: ELOOP/ENOTDIR)
    try:
        return child, _entries(child, ordered)
    except OSError:
        os.close(child)
        return None
