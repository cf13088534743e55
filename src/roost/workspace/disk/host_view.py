"""A mock or sandbox workspace's files on the host as a `DiskView`, read as the agent reads them.

The workspace can write every directory here, so nothing is ever followed:
each tree's directory is opened with `O_NOFOLLOW` below its (roost-owned)
parent, everything under it through directory fds (`host_tree.open_below`),
entries are looked at with `lstat`, and a file is opened `O_NOFOLLOW` and
checked to be a regular file after opening. A guest path is served by the
first tree holding it (`/workspace` before the sandbox's upper layer at `/`),
and a tree's directory shows up in a listing of the tree above it.

Imports: backends (OfflineDisk), errors, workspace.host_tree, workspace.disk.view and the standard library.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from roost.backends import OfflineDisk
from roost.errors import InvalidArgument, NotFound
from roost.workspace.disk.view import (
    DiskNode,
    DiskPath,
    kind_of,
    missing,
    shown,
    through_link,
    walk_tree,
)
from roost.workspace.host_tree import DIR_FLAGS, ENTRY_FLAGS, open_below

__all__ = ["HostView"]

CHUNK = 1024 * 1024


def _node(parts: DiskPath, st: os.stat_result, dir_fd: int, name: str) -> DiskNode:
    target = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:
            target = ""  # replaced since it was looked at
    kind = kind_of(st.st_mode)
    return DiskNode(parts, kind, st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime, st.st_blocks * 512, target)


class HostView:
    """The host directories an `OfflineDisk` names, read only."""

    def __init__(self, disk: OfflineDisk) -> None:
        self.trees = [(tuple(p for p in mount.split("/") if p), path) for mount, path in disk.trees]

    def _tree(self, parts: DiskPath) -> tuple[DiskPath, Path]:
        for mount, path in self.trees:
            if parts[: len(mount)] == mount:
                return mount, path
        raise NotFound(
            f"{shown(parts)} is not on this workspace's disk",
            code="path_not_found",
            hint=f"its disk holds {', '.join(shown(m) for m, _ in self.trees)}",
        )

    def _open_root(self, parts: DiskPath, path: Path) -> int:
        try:
            parent = os.open(os.path.realpath(path.parent), DIR_FLAGS)  # roost's own directory
            try:
                return os.open(path.name, DIR_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
        except OSError:
            raise missing(parts) from None

    def _open_dir(self, parts: DiskPath) -> tuple[int, DiskPath]:
        """An fd of the directory `parts` (which a tree holds) and its tree's mount point."""
        mount, path = self._tree(parts)
        root = self._open_root(parts, path)
        try:
            return open_below(root, parts[len(mount) :]), mount
        except OSError as exc:
            raise self._walk_error(root, parts, mount, exc) from None
        finally:
            os.close(root)

    def _walk_error(self, root: int, parts: DiskPath, mount: DiskPath, exc: OSError) -> Exception:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return _denied(parts)
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            return missing(parts)
        below = parts[len(mount) :]
        for depth in range(len(below)):
            try:
                fd = open_below(root, below[:depth])
            except OSError:
                break
            try:
                st = os.lstat(below[depth], dir_fd=fd)
            except OSError:
                break
            finally:
                os.close(fd)
            if stat.S_ISLNK(st.st_mode):
                return through_link(parts, parts[: len(mount) + depth + 1])
            if not stat.S_ISDIR(st.st_mode):
                shown_dir = shown(parts[: len(mount) + depth + 1])
                return InvalidArgument(f"{shown_dir} is not a directory", code="not_a_directory")
        return missing(parts)

    def node(self, parts: DiskPath) -> DiskNode:
        mount, _path = self._tree(parts)
        if parts == mount:
            fd, _ = self._open_dir(parts)
            try:
                return _node(parts, os.fstat(fd), fd, "")
            finally:
                os.close(fd)
        fd, _ = self._open_dir(parts[:-1])
        try:
            return _node(parts, os.lstat(parts[-1], dir_fd=fd), fd, parts[-1])
        except FileNotFoundError:
            raise missing(parts) from None
        finally:
            os.close(fd)

    def _children(self, directory: DiskNode) -> list[DiskNode]:
        parts = directory.parts
        try:
            fd, _mount = self._open_dir(parts)
        except (NotFound, InvalidArgument):
            return []  # gone or replaced since it was listed
        found = {}
        try:
            with contextlib.suppress(PermissionError), os.scandir(fd) as entries:  # unreadable: listed as empty
                for entry in entries:
                    try:
                        found[entry.name] = _node(
                            (*parts, entry.name), entry.stat(follow_symlinks=False), fd, entry.name
                        )
                    except FileNotFoundError:
                        continue
        finally:
            os.close(fd)
        for mount, _path in self.trees:  # a tree's directory below this one replaces what the tree above has there
            if len(mount) == len(parts) + 1 and mount[: len(parts)] == parts:
                try:
                    found[mount[-1]] = self.node(mount)
                except NotFound:
                    found.pop(mount[-1], None)
        return [found[name] for name in sorted(found, key=os.fsencode)]

    def walk(self, top: DiskNode, *, recursive: bool, after: tuple[bytes, ...] | None = None) -> Iterator[DiskNode]:
        return walk_tree(self._children, top, recursive=recursive, after=after)

    def read(self, node: DiskNode, offset: int) -> Iterator[bytes]:
        fd, _mount = self._open_dir(node.parts[:-1])
        try:
            file_fd = os.open(node.parts[-1], ENTRY_FLAGS, dir_fd=fd)
        except PermissionError:
            raise _denied(node.parts) from None
        except OSError:
            raise missing(node.parts) from None
        finally:
            os.close(fd)
        return _chunks(file_fd, node, offset)


def _denied(parts: DiskPath) -> InvalidArgument:
    return InvalidArgument(
        f"roost's user may not read {shown(parts)} (it belongs to a user of the workspace)",
        code="permission_denied",
        hint="read it from inside the workspace while it runs, or run roost as root",
    )


def _chunks(fd: int, node: DiskNode, offset: int) -> Iterator[bytes]:
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument(f"{node.path} changed while it was opened", hint="try again")
        os.set_blocking(fd, True)
        while chunk := os.pread(fd, CHUNK, offset):
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)
