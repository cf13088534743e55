"""Tar archives in and out of the workspace: unpack an uploaded stream, stream a tree out.

Import is all-or-nothing up to the final moves: every member is checked and
unpacked into a private staging directory first, so a hostile or broken
archive never touches the destination. The checks are written out here
because Debian 12's python (3.11.2) predates tarfile's extraction filters.

Imports: protocol, the agent's own modules and the standard library only.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, cast

from roost.agent.context import Reply, RequestContext
from roost.agent.ops import AgentRuntime
from roost.protocol import Code, OpError
from roost.protocol.messages import CH_DATA

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

CHUNK_BYTES = 1024 * 1024
# The kernel gives up after 40 links in one lookup; resolving staged links does the same.
MAX_LINK_HOPS = 40
REJECT_HINT = "the archive must hold only regular files, directories and links that stay inside it"


def _reject(message: str) -> OpError:
    return OpError(Code.ARCHIVE_REJECTED, message, hint=REJECT_HINT)


def _check_cancelled(ctx: RequestContext) -> None:
    if ctx.cancelled.is_set():
        raise OpError(Code.CANCELLED, f"{ctx.op} cancelled")


class _UploadReader(io.RawIOBase):
    """The upload's chunks as a readable stream, without copying the pending chunk on every read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._view = memoryview(chunk)
        out = memoryview(buffer).cast("B")
        n = min(len(out), len(self._view))
        out[:n] = self._view[:n]
        self._view = self._view[n:]
        return n

    def drain(self) -> None:
        # Reading to the end proves the upload finished and was not cut short after the tar trailer.
        while next(self._chunks, None) is not None:
            pass


class _ChannelWriter(io.RawIOBase):
    """A writable stream that ships roughly CHUNK_BYTES at a time on the data channel."""

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        if len(self._buffer) >= CHUNK_BYTES:
            self.flush()
        return len(view)

    def flush(self) -> None:
        if self._buffer:
            self._ctx.send(CH_DATA, bytes(self._buffer))
            self._buffer.clear()


@dataclass
class _Tally:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    # staged directory -> (mode, mtime), applied once everything is in place
    dir_meta: dict[str, tuple[int, float]] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)


def _parts(name: str, what: str) -> list[str]:
    if name.startswith("/"):
        raise _reject(f"{what} {name!r} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _reject(f"{what} {name!r} contains '..'")
    return parts


def _check_parents(staging: str, parts: list[str], name: str) -> None:
    # Only the staged tree matters: anything it holds was put there by this archive.
    path = staging
    for part in parts[:-1]:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise _reject(f"member {name!r} passes through the symlink {part!r} created earlier in the archive")
        if not stat.S_ISDIR(st.st_mode):
            raise _reject(f"member {name!r} passes through {part!r}, which is not a directory")


def _stays_inside(staging: str, rel: str) -> bool:
    """Whether resolving `rel` through the staged symlinks ends inside `staging`."""
    resolved: list[str] = []
    todo = deque(rel.split("/"))
    hops = 0
    while todo:
        part = todo.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return False
            resolved.pop()
            continue
        resolved.append(part)
        path = os.path.join(staging, *resolved)
        if os.path.islink(path):
            hops += 1
            target = os.readlink(path)
            if hops > MAX_LINK_HOPS or target.startswith("/"):
                return False
            resolved.pop()
            todo.extendleft(reversed(target.split("/")))
    return True


def _clear(path: str, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(path)
    else:
        os.unlink(path)


def _stage_member(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: str, tally: _Tally) -> None:
    name = member.name
    parts = _parts(name, "member")
    if not parts:
        if member.isdir():
            return  # "./": the destination itself, which keeps its own metadata
        raise _reject(f"member {name!r} names the destination itself")
    kind_ok = member.isreg() or member.isdir() or member.issym() or member.islnk()
    if not kind_ok:
        raise _reject(f"member {name!r} is a device, fifo or other special file")
    rel = "/".join(parts)
    _check_parents(staging, parts, name)
    target = os.path.join(staging, *parts)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _clear(target, keep_dir=member.isdir())
    tally.dir_meta.pop(rel, None)
    mode = member.mode & 0o777  # setuid, setgid and sticky bits never survive an import
    if member.isdir():
        os.makedirs(target, exist_ok=True)
        tally.dir_meta[rel] = (mode, float(member.mtime))
        tally.dirs += 1
    elif member.isreg():
        source = tar.extractfile(member)
        if source is None:
            raise _reject(f"member {name!r} has no data")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out, source:
            shutil.copyfileobj(source, out, CHUNK_BYTES)
            os.fchmod(out.fileno(), mode)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
        tally.files += 1
        tally.bytes += member.size
    elif member.issym():
        link = member.linkname
        if not link or link.startswith("/"):
            raise _reject(f"symlink {name!r} has the absolute target {link!r}")
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
        if lexical == ".." or lexical.startswith("../"):
            raise _reject(f"symlink {name!r} points outside the archive ({link!r})")
        os.symlink(link, target)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
        tally.links.append(rel)
        tally.symlinks += 1
    else:
        link_parts = _parts(member.linkname, f"hardlink {name!r} target")
        _check_parents(staging, link_parts, member.linkname)
        source_path = os.path.join(staging, *link_parts)
        if not link_parts or not os.path.isfile(source_path) or os.path.islink(source_path):
            raise _reject(f"hardlink {name!r} must point at a regular file earlier in the archive")
        os.link(source_path, target, follow_symlinks=False)
        tally.files += 1


def _stage(ctx: RequestContext, staging: str) -> _Tally:
    tally = _Tally()
    reader = _UploadReader(ctx.upload())
    try:
        with tarfile.open(fileobj=cast(BinaryIO, reader), mode="r|*") as tar:
            while (member := tar.next()) is not None:
                _check_cancelled(ctx)
                _stage_member(tar, member, staging, tally)
    except (tarfile.TarError, EOFError) as exc:
        raise _reject(f"not a readable tar stream: {exc}") from None
    reader.drain()
    # Later members can retarget a link checked earlier, so links are judged on the finished tree.
    for rel in tally.links:
        if not _stays_inside(staging, rel):
            raise _reject(f"symlink {rel!r} resolves outside the archive")
    return tally


def _remove(path: str) -> int:
    """Delete a file, link or tree; return how many entries went."""
    if os.path.isdir(path) and not os.path.islink(path):
        count = 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(path))
        shutil.rmtree(path)
        return count
    os.unlink(path)
    return 1


def _merge(source_dir: str, dest_dir: str, delete: bool, protected: str = "") -> int:
    """Move the staged entries of `source_dir` into `dest_dir`; return how many entries were deleted.

    `protected` (the scratch root, which may sit inside the workspace and holds
    `source_dir`) is never deleted.
    """
    names = sorted(os.listdir(source_dir))
    deleted = 0
    if delete:
        keep = set(names)
        for existing in sorted(os.listdir(dest_dir)):
            path = os.path.join(dest_dir, existing)
            if existing not in keep and path != protected:
                deleted += _remove(path)
    for name in names:
        source = os.path.join(source_dir, name)
        dest = os.path.join(dest_dir, name)
        source_is_dir = stat.S_ISDIR(os.lstat(source).st_mode)
        try:
            dest_mode: int | None = os.lstat(dest).st_mode
        except FileNotFoundError:
            dest_mode = None
        if dest_mode is not None and stat.S_ISDIR(dest_mode):
            if source_is_dir:
                deleted += _merge(source, dest, delete, protected)
                continue
            shutil.rmtree(dest)
        elif dest_mode is not None and source_is_dir:
            os.unlink(dest)  # never merge into whatever a link in the destination points at
        os.replace(source, dest)  # scratch shares the workspace's filesystem, so this is a rename
    return deleted


def _apply_dir_meta(dest: str, meta: dict[str, tuple[int, float]]) -> None:
    # Deepest first, after all moves, so read-only directories and their mtimes are set last.
    for rel in sorted(meta, key=lambda r: r.count("/"), reverse=True):
        path = os.path.join(dest, *rel.split("/"))
        if stat.S_ISDIR(os.lstat(path).st_mode):
            mode, mtime = meta[rel]
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))


def import_archive(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    """Unpack the uploaded tar stream (optionally compressed) into `dest`.

    Raises:
        OpError: archive_rejected for an unsafe or unreadable archive (dest untouched),
            path_outside_workspace, not_a_directory, cancelled.
    """
    guest = ctx.arg_str("dest", "/workspace")
    delete = ctx.arg_bool("delete", False)
    dest = runtime.paths.host(guest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise OpError(Code.NOT_A_DIRECTORY, f"{guest} exists and is not a directory", hint="import into a directory")
    with runtime.staging_dir("import-") as staging:
        tally = _stage(ctx, staging)
        _check_cancelled(ctx)
        os.makedirs(dest, exist_ok=True)
        deleted = _merge(staging, dest, delete, os.path.realpath(runtime.scratch_dir))
        _apply_dir_meta(dest, tally.dir_meta)
    return Reply(
        {
            "dest": runtime.paths.guest(dest),
            "files": tally.files,
            "dirs": tally.dirs,
            "symlinks": tally.symlinks,
            "bytes": tally.bytes,
            "deleted": deleted,
        }
    )


def _walk(root: str) -> Iterator[tuple[str, str]]:
    """Yield (host path, relative name) under `root`, parents before children, never through links."""
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name, reverse=True)
        for entry in reversed(entries):
            rel = f"{prefix}{entry.name}"
            yield entry.path, rel
        pending.extend((e.path, f"{prefix}{e.name}/") for e in entries if e.is_dir(follow_symlinks=False))


def export_archive(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    """Stream an uncompressed tar of `path` on the data channel.

    Raises:
        OpError: path_not_found, permission_denied, path_outside_workspace, cancelled.
    """
    guest = ctx.arg_str("path", "/workspace")
    host = runtime.paths.host(guest, follow_final=False)
    try:
        top = os.lstat(host)
    except FileNotFoundError:
        raise OpError(Code.PATH_NOT_FOUND, f"{guest} does not exist") from None
    if stat.S_ISDIR(top.st_mode):
        members: Iterator[tuple[str, str]] = _walk(host)
    else:
        members = iter([(host, os.path.basename(host))])
    counts = {"files": 0, "dirs": 0, "symlinks": 0, "bytes": 0, "skipped": 0}
    writer = _ChannelWriter(ctx)
    with tarfile.open(fileobj=cast(BinaryIO, writer), mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, name in members:
            _check_cancelled(ctx)
            info = tar.gettarinfo(path, arcname=name)
            if info is None or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                counts["skipped"] += 1
                continue
            if info.isreg():
                try:
                    # O_NOFOLLOW: a file swapped for a link since the lstat is not followed out of the workspace.
                    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as fh:
                        tar.addfile(info, fh)
                except PermissionError:
                    raise OpError(Code.PERMISSION_DENIED, f"cannot read {runtime.paths.guest(path)}") from None
                counts["files"] += 1
                counts["bytes"] += info.size
            else:
                tar.addfile(info)
                key = "dirs" if info.isdir() else "symlinks" if info.issym() else "files"
                counts[key] += 1
    writer.flush()
    return Reply({"path": runtime.paths.guest(host), **counts})
