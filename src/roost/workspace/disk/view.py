"""What `workspace disk` reads: a stopped workspace's files as a read-only view, whatever holds them.

A `DiskView` answers for guest paths (`/workspace/src`, `/etc/hosts`) split
into components (`DiskPath`): the entry itself (never following a link), a
walk below a directory in tree order, and a regular file's bytes. Two views
implement it: host directories read through directory fds (mock, sandbox:
`host_view`) and an ext4 image read with e2fsprogs without mounting it
(firecracker: `ext4_view`). Neither follows a symbolic link anywhere: a link
is an entry with a `target`, listed and never resolved.

Imports: arguments, errors and the standard library.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from roost import arguments
from roost.errors import InvalidArgument, NotFound

__all__ = [
    "DIR",
    "FILE",
    "OTHER",
    "SYMLINK",
    "DiskNode",
    "DiskPath",
    "DiskView",
    "disk_path",
    "kind_of",
    "missing",
    "through_link",
    "walk_tree",
]

FILE, DIR, SYMLINK, OTHER = "file", "dir", "symlink", "other"
GUEST_ROOT = "/workspace"
LINK_HINT = "disk tools never follow symbolic links: name the path the link points at"

DiskPath = tuple[str, ...]
"""A guest path's components below `/` (os.fsdecode form); () is `/` itself."""


def disk_path(value: object, what: str = "path") -> DiskPath:
    """A guest path as components: a relative one is below /workspace, `..` never climbs above `/`.

    Raises:
        InvalidArgument: not a usable path (empty, a NUL byte, ...).
    """
    name = arguments.guest_name(value, what)
    absolute = posixpath.normpath(posixpath.join(GUEST_ROOT, name))
    return tuple(part for part in absolute.split("/") if part)


def kind_of(mode: int) -> str:
    """file, dir, symlink, or other: a device, fifo or socket (in an overlay's upper layer, a whiteout)."""
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return DIR
    if stat.S_ISLNK(mode):
        return SYMLINK
    return OTHER


def shown(parts: DiskPath) -> str:
    return "/" + "/".join(parts)


def missing(parts: DiskPath) -> NotFound:
    return NotFound(
        f"{shown(parts)} does not exist on the workspace's disk",
        code="path_not_found",
        hint="list the directory it should be in to see what is there",
    )


def through_link(parts: DiskPath, link: DiskPath) -> InvalidArgument:
    return InvalidArgument(
        f"{shown(parts)} passes through the symbolic link {shown(link)}", code="path_not_allowed", hint=LINK_HINT
    )


@dataclass(frozen=True)
class DiskNode:
    """One entry on the disk. `kind`: file, dir, symlink or other; `allocated`: bytes it takes on disk
    (a sparse file takes less than its size); `target`: a symlink's, as it is stored."""

    parts: DiskPath
    kind: str
    size: int
    mode: int
    mtime: float
    allocated: int
    target: str | None = None

    @property
    def path(self) -> str:
        return shown(self.parts)


class DiskView(Protocol):
    """A stopped workspace's files, read only, never through a link."""

    def node(self, parts: DiskPath) -> DiskNode:
        """The entry at `parts` itself (a symlink is not followed).

        Raises:
            NotFound: path_not_found.  InvalidArgument: path_not_allowed (a link on the way).
        """
        ...

    def walk(self, top: DiskNode, *, recursive: bool, after: tuple[bytes, ...] | None = None) -> Iterator[DiskNode]:
        """The entries below the directory `top` in tree order (a directory before what it holds, siblings
        by the bytes of their names); only its children unless `recursive`. `after` (components below
        `top`, as bytes) resumes after that entry."""
        ...

    def read(self, node: DiskNode, offset: int) -> Iterator[bytes]:
        """The bytes of the regular file `node` from `offset` to its end, in chunks (stop early by closing)."""
        ...


def walk_tree(
    children: Callable[[DiskNode], list[DiskNode]],
    top: DiskNode,
    *,
    recursive: bool,
    after: tuple[bytes, ...] | None = None,
) -> Iterator[DiskNode]:
    """What `DiskView.walk` yields, from `children(directory)` (its entries sorted by the bytes of their names).

    Entries before `after` in tree order are skipped a whole directory at a time.
    """
    stack: list[tuple[Iterator[DiskNode], tuple[bytes, ...] | None]] = [(iter(children(top)), after or None)]
    while stack:
        entries, resume = stack[-1]
        node = next(entries, None)
        if node is None:
            stack.pop()
            continue
        if resume is not None:
            name = os.fsencode(node.parts[-1])
            if name < resume[0]:
                continue
            stack[-1] = (entries, None)  # everything after this entry comes after `after`
            if name == resume[0]:
                if recursive and node.kind == DIR:
                    stack.append((iter(children(node)), resume[1:] or None))
                continue
        yield node
        if recursive and node.kind == DIR:
            stack.append((iter(children(node)), None))
