"""A firecracker workspace's disk (an ext4 image) as a `DiskView`, read with debugfs, never mounted.

Paths are resolved from the root inode one directory listing at a time, by
comparing the bytes of names; a symbolic link on the way is refused, never
followed. A walk lists a whole subtree a level at a time (one debugfs
process per level, not one per directory), then yields it in tree order,
reading the inodes of what it yields a page at a time (a listing's first
page does not wait for every inode below). A directory met twice (a
damaged image can loop) is listed once.

Imports: errors, workspace.disk.debugfs, workspace.disk.view and the standard library.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from roost.errors import InvalidArgument
from roost.workspace.disk.debugfs import ROOT_INODE, Debugfs, DirRecord, InodeInfo
from roost.workspace.disk.view import (
    DiskNode,
    DiskPath,
    kind_of,
    missing,
    through_link,
    walk_tree,
)

__all__ = ["Ext4View"]

PAGE = 1000  # entries whose inodes are read by one debugfs process while walking


class Ext4View:
    """The files of one ext4 image."""

    def __init__(self, image: Path) -> None:
        self.fs = Debugfs(image)
        self._inode_of: dict[DiskPath, int] = {(): ROOT_INODE}
        self._listed: dict[int, list[DirRecord]] = {}
        self._infos: dict[int, InodeInfo] = {}

    def _record(self, parts: DiskPath) -> DirRecord:
        """The directory entry of `parts` (the root has none: a made-up one)."""
        if not parts:
            return DirRecord(ROOT_INODE, stat.S_IFDIR | 0o755, b"", 0)
        inode = ROOT_INODE
        record = None
        for depth, part in enumerate(parts):
            if record is not None:
                if stat.S_ISLNK(record.mode):
                    raise through_link(parts, parts[:depth])
                if not stat.S_ISDIR(record.mode):
                    raise InvalidArgument(f"{'/' + '/'.join(parts[:depth])} is not a directory", code="not_a_directory")
            entries = self._children(inode)
            name = os.fsencode(part)
            record = next((entry for entry in entries if entry.name == name), None)
            if record is None:
                raise missing(parts)
            inode = record.inode
        assert record is not None
        return record

    def _children(self, inode: int) -> list[DirRecord]:
        if inode not in self._listed:
            self._listed.update(self.fs.list_dirs([inode]))
        return self._listed[inode]

    def _nodes(self, items: list[tuple[DiskPath, DirRecord]]) -> list[DiskNode]:
        """Entries as nodes: their inodes read in one batch, slow symlinks' targets one by one."""
        unknown = list(dict.fromkeys(record.inode for _parts, record in items if record.inode not in self._infos))
        self._infos.update(self.fs.inodes(unknown))
        infos = self._infos
        nodes = []
        for parts, record in items:
            info = infos[record.inode]
            target = None
            if stat.S_ISLNK(record.mode):
                raw = info.fast_target
                if raw is None:
                    raw = b"".join(self.fs.cat(record.inode))[: record.size]
                target = os.fsdecode(raw)
            size = record.size if not stat.S_ISDIR(record.mode) else info.allocated
            mode = stat.S_IMODE(record.mode)
            nodes.append(DiskNode(parts, kind_of(record.mode), size, mode, float(info.mtime), info.allocated, target))
            self._inode_of[parts] = record.inode
        return nodes

    def node(self, parts: DiskPath) -> DiskNode:
        return self._nodes([(parts, self._record(parts))])[0]

    def _prefetch(self, inode: int) -> None:
        """List every directory below `inode`, a level at a time (inodes are read later, a page at a time)."""
        level = [inode]
        seen = set(self._listed)
        while level:
            todo = [d for d in level if d not in seen]
            seen.update(todo)
            self._listed.update(self.fs.list_dirs(todo))
            level = [r.inode for d in todo for r in self._listed[d] if stat.S_ISDIR(r.mode) and r.inode not in seen]

    def walk(self, top: DiskNode, *, recursive: bool, after: tuple[bytes, ...] | None = None) -> Iterator[DiskNode]:
        inode = self._inode_of.get(top.parts) or self._record(top.parts).inode
        if recursive:
            self._prefetch(inode)
        records: dict[DiskPath, DirRecord] = {}

        def children(node: DiskNode) -> list[DiskNode]:
            """Sketches (what `ls -p` says) in order: enough to walk by; `_nodes` fills them in."""
            sketches = []
            for record in sorted(self._children(self._inode_of[node.parts]), key=lambda r: r.name):
                parts = (*node.parts, os.fsdecode(record.name))
                records[parts] = record
                self._inode_of[parts] = record.inode
                sketches.append(DiskNode(parts, kind_of(record.mode), record.size, stat.S_IMODE(record.mode), 0.0, 0))
            return sketches

        walked = walk_tree(children, top, recursive=recursive, after=after)
        while batch := list(itertools.islice(walked, PAGE)):
            yield from self._nodes([(sketch.parts, records.pop(sketch.parts)) for sketch in batch])

    def read(self, node: DiskNode, offset: int) -> Iterator[bytes]:
        inode = self._inode_of.get(node.parts) or self._record(node.parts).inode
        return self.fs.cat(inode, offset)
