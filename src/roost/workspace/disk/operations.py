"""`workspace disk list|read|export|usage|check|grow` on a stopped workspace, any backend.

Each call holds the workspace's lock while it reads, so nothing starts it
meanwhile, and refuses a workspace that is not stopped (`workspace_running`:
its files are changing; stop it first). The backend says where the files are
(`OfflineDisk`): an ext4 image (firecracker) is read with debugfs, host
directories (mock, sandbox) through directory fds. An export is built as a
tar from the view, then judged and written by the same code as `workspace
export` (`snapshots.publish_archive`): the same mode and link rules.

Imports: arguments, backends (OfflineDisk), errors, models, protocol (limits, records' cursors), store,
workspace (recovery, snapshots, export_target, host_tree, engine), workspace.disk siblings, standard library.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from roost import arguments
from roost.backends import OfflineDisk
from roost.confinement import HostArg
from roost.errors import ConflictError, InvalidArgument
from roost.models import DirUsage, DiskCheck, DiskGrow, DiskUsage, ExportResult, FileContent, FileEntry, FileListing
from roost.protocol.limits import MAX_FILE_OFFSET, MAX_FILE_READ_BYTES
from roost.protocol.records import decode_cursor, encode_cursor
from roost.store.records import WorkspaceRecord
from roost.store.states import CREATING, FAILED, RUNNING, STOPPED, UNHEALTHY
from roost.workspace import recovery
from roost.workspace.disk import image_tools
from roost.workspace.disk.ext4_view import Ext4View
from roost.workspace.disk.host_view import HostView
from roost.workspace.disk.view import DIR, FILE, SYMLINK, DiskNode, DiskView, disk_path, shown
from roost.workspace.engine import Engine
from roost.workspace.export_target import export_target
from roost.workspace.host_tree import host_path
from roost.workspace.snapshots import export_failures, publish_archive

__all__ = ["check_disk", "disk_usage", "export_disk", "grow_disk", "list_disk", "read_disk"]

DEFAULT_READ_BYTES = 1024 * 1024
DEFAULT_TOP = 10
MAX_TOP = 1000
EXPORT_FORMATS = ("dir", "tar")
NO_IMAGE_HINT = (
    "its files are host directories, with no filesystem of their own to check or grow; disk usage shows what fills them"
)


@contextlib.contextmanager
def _stopped(engine: Engine, record: WorkspaceRecord) -> Iterator[tuple[WorkspaceRecord, OfflineDisk]]:
    """The workspace, held stopped (its lock) for the block, and where its files are.

    Raises:
        ConflictError: workspace_running (also unhealthy: what is left of it may still write), workspace_busy.
        WorkspaceError: workspace_failed.
    """
    with engine.store.lock(record.id):
        current = engine.store.load(record.id)
        if current.state == FAILED or (current.state == CREATING and not engine.store.owner_alive(current.id)):
            raise recovery.failed_error(current.id, current.reason)
        if current.state not in (STOPPED, RUNNING, UNHEALTHY):  # being created or deleted
            raise ConflictError(f"workspace {current.id} is {current.state}", code="workspace_busy", hint="retry soon")
        if current.state != STOPPED:
            raise ConflictError(
                f"workspace {current.id} is {current.state}: disk tools read a stopped workspace's disk only",
                code="workspace_running",
                remedy=recovery.stop(current.id),
            )
        yield current, engine.backend(current).offline_disk(engine.store.dir(current.id))


def _view(disk: OfflineDisk) -> DiskView:
    return Ext4View(disk.image) if disk.image is not None else HostView(disk)


def _entry(node: DiskNode) -> FileEntry:
    return FileEntry(
        node.path, node.parts[-1] if node.parts else "/", node.kind, node.size, node.mode, node.mtime, node.target
    )


def list_disk(
    engine: Engine,
    record: WorkspaceRecord,
    path: str | bytes = "/workspace",
    recursive: bool = False,
    *,
    cursor: str | None = None,
    limit: int | None = None,
) -> FileListing:
    """The entries of `path` on the disk in tree order (symlinks listed with their targets, never followed):
    all, or with `limit` one page that `next_cursor` continues.

    Raises:
        InvalidArgument: a bad path, cursor or limit; path_not_allowed (a link on the way).
        NotFound: path_not_found.  ConflictError: workspace_running.
    """
    parts = disk_path(path)
    after = arguments.list_cursor(cursor)
    most = arguments.optional_count(limit, "limit", MAX_FILE_OFFSET)
    resume = decode_cursor(after) if after is not None else None
    with _stopped(engine, record) as (_current, disk):
        view = _view(disk)
        top = view.node(parts)
        if top.kind != DIR:
            lone = () if resume else (top,)
            return FileListing(top.path, tuple(_entry(node) for node in lone), False, None)
        entries: list[FileEntry] = []
        next_cursor = None
        walked = view.walk(top, recursive=recursive, after=resume)
        for node in walked:
            if most is not None and len(entries) == most:
                last = entries[-1]
                below = os.fsencode(last.path)[len(os.fsencode(top.path.rstrip("/"))) + 1 :]
                next_cursor = encode_cursor(below.split(b"/"))
                break
            entries.append(_entry(node))
    return FileListing(top.path, tuple(entries), next_cursor is not None, next_cursor)


def read_disk(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, offset: int = 0, max_bytes: int | None = None
) -> FileContent:
    """Up to `max_bytes` (default 1 MiB, at most 8 MiB) of a regular file on the disk, from `offset`.

    Raises:
        InvalidArgument: a bad path, offset or size; is_a_directory; not_a_file.
        NotFound: path_not_found.  ConflictError: workspace_running.
    """
    parts = disk_path(path)
    start = arguments.file_offset(offset)
    size = DEFAULT_READ_BYTES if max_bytes is None else arguments.read_size(max_bytes, "max_bytes", MAX_FILE_READ_BYTES)
    with _stopped(engine, record) as (current, disk):
        view = _view(disk)
        node = view.node(parts)
        if node.kind == DIR:
            raise InvalidArgument(f"{node.path} is a directory", code="is_a_directory", hint="list it instead")
        if node.kind != FILE:
            what = f"a symbolic link to {node.target!r}" if node.kind == SYMLINK else "not a regular file"
            raise InvalidArgument(f"{node.path} is {what}", code="not_a_file", hint="read a regular file")
        data = bytearray()
        if size and start < node.size:
            chunks = view.read(node, start)
            try:
                for chunk in chunks:
                    data += chunk[: size - len(data)]
                    if len(data) >= size:
                        break
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        redactor = engine.redactor(current)
    raw = bytes(data)
    shown_data = raw if redactor is None else redactor.redact(raw)
    end = start + len(raw)
    return FileContent(node.path, node.size, start, shown_data, end >= node.size, read_bytes=len(raw))


def _tar_member(parts_below: tuple[str, ...], node: DiskNode) -> tarfile.TarInfo:
    info = tarfile.TarInfo("/".join(parts_below))
    info.mode, info.mtime = node.mode, int(node.mtime)
    if node.kind == DIR:
        info.type = tarfile.DIRTYPE
    elif node.kind == SYMLINK:
        info.type, info.linkname = tarfile.SYMTYPE, node.target or ""
    elif node.kind == FILE:
        info.type, info.size = tarfile.REGTYPE, node.size
    else:
        info.type = tarfile.FIFOTYPE  # a device, fifo or socket: listed as skipped, never recreated
    return info


class _Exactly:
    """A file's chunks as a reader of exactly `size` bytes (short data padded with zeros, extra dropped)."""

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self.chunks, self.left, self.buffer = chunks, size, b""

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        while len(self.buffer) < want:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.buffer += bytes(want - len(self.buffer))
                break
            self.buffer += chunk
        data, self.buffer = self.buffer[:want], self.buffer[want:]
        self.left -= len(data)
        return data


def _write_archive(view: DiskView, top: DiskNode, out: BinaryIO) -> None:
    """A tar of `top` as `workspace export`'s agent sends one: a directory's entries below it, or the lone entry."""
    nodes = view.walk(top, recursive=True) if top.kind == DIR else iter([top])
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for node in nodes:
            below = node.parts[len(top.parts) :] if top.kind == DIR else node.parts[-1:]
            info = _tar_member(below, node)
            if node.kind == FILE:
                chunks = view.read(node, 0)
                tar.addfile(info, _Exactly(iter(chunks), node.size))
                getattr(chunks, "close", lambda: None)()
            else:
                tar.addfile(info)


def export_disk(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, output: HostArg, fmt: str = "dir"
) -> ExportResult:
    """Write a file or directory of the disk to a new host path, as files (`dir`) or a tar, by `workspace
    export`'s rules: no setuid/setgid/sticky or group/other write bits, no link leading out, no special file.

    Raises:
        ConflictError: output_exists, workspace_running.  InvalidArgument: a bad format, output_dir_missing,
            path_not_allowed, export_skipped.  NotFound: path_not_found.
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidArgument(f"unknown disk export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    parts = disk_path(path)
    where = host_path(output, home=engine.home, output=True)
    with _stopped(engine, record) as (_current, disk), export_failures(where), export_target(where) as target:
        view = _view(disk)
        top = view.node(parts)
        with target.scratch_file("disk.tar") as archive:
            _write_archive(view, top, archive)
            return publish_archive(target, archive, lone=top.kind != DIR, fmt=fmt, guest=top.path)


def disk_usage(
    engine: Engine, record: WorkspaceRecord, path: str | bytes = "/workspace", top: int | None = None
) -> DiskUsage:
    """What `path` and the directories below it take on the disk (allocated bytes, as `du`), the `top`
    (default 10) largest directories first.

    Raises:
        InvalidArgument: a bad path or count.  NotFound: path_not_found.  ConflictError: workspace_running.
    """
    parts = disk_path(path)
    most = arguments.optional_count(top, "top", MAX_TOP) or DEFAULT_TOP
    with _stopped(engine, record) as (_current, disk):
        view = _view(disk)
        root = view.node(parts)
        totals: dict[tuple[str, ...], list[int]] = {root.parts: [root.allocated, int(root.kind != DIR)]}
        files = 0 if root.kind == DIR else 1
        walked = view.walk(root, recursive=True) if root.kind == DIR else iter(())
        for node in walked:
            if node.kind == DIR:
                totals[node.parts] = [0, 0]
            else:
                files += 1
            for depth in range(len(root.parts), len(node.parts)):
                total = totals[node.parts[:depth]]
                total[0] += node.allocated
                total[1] += node.kind != DIR
            if node.kind == DIR:
                totals[node.parts][0] += node.allocated
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))[:most]
    largest = tuple(DirUsage(shown(parts_), used, count) for parts_, (used, count) in ranked)
    dirs = len(totals) if root.kind == DIR else 0
    return DiskUsage(root.path, totals[root.parts][0], files, dirs, largest)


def _image(record: WorkspaceRecord, disk: OfflineDisk) -> Path:
    if disk.image is None:
        raise InvalidArgument(
            f"workspace {record.id} ({record.backend}) has no disk image", code="unsupported", hint=NO_IMAGE_HINT
        )
    return disk.image


def check_disk(engine: Engine, record: WorkspaceRecord, repair: bool = False) -> DiskCheck:
    """Check the filesystem of a stopped microVM's disk (`e2fsck -n`: nothing written); with `repair`, repair a
    copy (`e2fsck -p`) and put it in place only when that succeeded.

    Raises:
        InvalidArgument: unsupported (mock, sandbox: no disk image).  ConflictError: workspace_running.
        BackendError: disk_tool_missing, disk_corrupt, disk_copy_failed, disk_tool_failed.
    """
    with _stopped(engine, record) as (current, disk):
        image = _image(current, disk)
        return image_tools.repair(image) if repair else image_tools.check(image)


def grow_disk(engine: Engine, record: WorkspaceRecord, size: int | str) -> DiskGrow:
    """Enlarge a stopped microVM's disk image and its filesystem to `size` (bytes, or text such as `4G`).

    Raises:
        InvalidArgument: a bad size, or not larger than now (never shrunk); unsupported (mock, sandbox).
        ConflictError: workspace_running.  BackendError: disk_corrupt, disk_grow_failed, disk_tool_missing.
    """
    wanted = image_tools.parse_size(size)
    with _stopped(engine, record) as (current, disk):
        return image_tools.grow(_image(current, disk), wanted)
