"""Tar archives in and out of the workspace: unpack an uploaded stream, stream a tree out.

Import is all-or-nothing up to the final moves: every member is checked and
unpacked into a private staging directory first, so a hostile or broken
archive never touches the destination. The checks are written out here
because Debian 12's python (3.11.2) predates tarfile's extraction filters.

Imports: protocol, the request core, the agent's `fs` layer and the standard library only.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, cast

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs import dirfd
from roost.agent.fs.cursor import DirCursor
from roost.agent.fs.dirtree import Found, walk
from roost.agent.fs.ignore_filter import ignore_filter
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.fs.resolve import Beneath, Location
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.messages import CH_DATA
from roost.protocol.ops.transfer import ArchiveExportArgs, ArchiveExportResult, ArchiveImportArgs, ArchiveImportResult

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

CHUNK_BYTES = 1024 * 1024
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


def _locate_staged(staging: Beneath, rel: str, name: str, *, make_dirs: bool = False) -> Location:
    """Where member `name` goes in the staged tree; never through a link the archive made."""
    try:
        return staging.locate(rel, follow_final=False, make_dirs=make_dirs, follow_links=False)
    except OSError as exc:
        raise _staging_error(exc, name) from None


def _staging_error(exc: OSError, name: str) -> Exception:
    if exc.errno == errno.ELOOP:
        return _reject(f"member {name!r} passes through a symlink created earlier in the archive")
    if exc.errno in (errno.ENOTDIR, errno.ENOENT):
        return _reject(f"member {name!r} passes through something that is not a directory")
    return exc


def _place_staged(cursor: DirCursor, rel: str, name: str) -> Location:
    """As `_locate_staged` with parents made, by the directories the member before left open (tar order)."""
    try:
        at, final = cursor.parent(rel)
        return Location(at, final, rel, _lstat(at, final))
    except OSError as exc:
        raise _staging_error(exc, name) from None


def _clear(found: Location, keep_dir: bool) -> None:
    if found.st is None:
        return
    if not stat.S_ISDIR(found.st.st_mode):
        os.unlink(found.name, dir_fd=found.dir_fd)
    elif not keep_dir:
        shutil.rmtree(found.name, dir_fd=found.dir_fd)


def _stage_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Beneath, cursor: DirCursor, tally: _Tally
) -> None:
    name = member.name
    parts = _parts(name, "member")
    if not parts:
        if member.isdir():
            return  # "./": the destination itself, which keeps its own metadata
        raise _reject(f"member {name!r} names the destination itself")
    kind_ok = member.isreg() or member.isdir() or member.issym() or member.islnk()
    if not kind_ok:
        raise _reject(f"member {name!r} is a device, fifo or other special file")
    _place(tar, member, staging, _place_staged(cursor, "/".join(parts), name), tally)


def _place(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Beneath, found: Location, tally: _Tally) -> None:
    name, rel, at = member.name, found.rel, found.dir_fd
    _clear(found, keep_dir=member.isdir())
    tally.dir_meta.pop(rel, None)
    mode = member.mode & 0o777  # setuid, setgid and sticky bits never survive an import
    times = (member.mtime, member.mtime)
    if member.isdir():
        if found.st is None or not stat.S_ISDIR(found.st.st_mode):
            os.mkdir(found.name, dir_fd=at)
        tally.dir_meta[rel] = (mode, float(member.mtime))
        tally.dirs += 1
    elif member.isreg():
        source = tar.extractfile(member)
        if source is None:
            raise _reject(f"member {name!r} has no data")
        fd = os.open(found.name, dirfd.NEW_FILE_FLAGS, 0o600, dir_fd=at)
        try:
            with source:
                while chunk := source.read(CHUNK_BYTES):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            os.utime(fd, times)
        finally:
            os.close(fd)
        tally.files += 1
        tally.bytes += member.size
    elif member.issym():
        link = member.linkname
        if not link or link.startswith("/"):
            raise _reject(f"symlink {name!r} has the absolute target {link!r}")
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
        if lexical == ".." or lexical.startswith("../"):
            raise _reject(f"symlink {name!r} points outside the archive ({link!r})")
        os.symlink(link, found.name, dir_fd=at)
        os.utime(found.name, times, dir_fd=at, follow_symlinks=False)
        tally.links.append(rel)
        tally.symlinks += 1
    else:
        link_parts = _parts(member.linkname, f"hardlink {name!r} target")
        source_at = _locate_staged(staging, "/".join(link_parts), member.linkname) if link_parts else None
        try:
            if source_at is None or source_at.st is None or not stat.S_ISREG(source_at.st.st_mode):
                raise _reject(f"hardlink {name!r} must point at a regular file earlier in the archive")
            os.link(source_at.name, found.name, src_dir_fd=source_at.dir_fd, dst_dir_fd=at, follow_symlinks=False)
        finally:
            if source_at is not None:
                staging.release(source_at)
        tally.files += 1


def _stays_inside(staging: Beneath, rel: str) -> bool:
    """Whether following the staged link `rel` (through the other staged links) stays inside the archive."""
    try:
        staging.release(staging.locate(rel))
    except OSError as exc:
        return exc.errno not in (errno.EXDEV, errno.ELOOP)  # a link through a missing dir leads nowhere
    return True


def _stage(ctx: RequestContext, staging_fd: int) -> _Tally:
    tally = _Tally()
    staging = Beneath(staging_fd)
    reader = _UploadReader(ctx.upload())
    try:
        # 0o777 before the umask: a directory the archive only implies gets the usual mode.
        with (
            tarfile.open(fileobj=cast(BinaryIO, reader), mode="r|*") as tar,
            DirCursor(staging_fd, make=True, make_mode=0o777) as cursor,
        ):
            while (member := tar.next()) is not None:
                _check_cancelled(ctx)
                _stage_member(tar, member, staging, cursor, tally)
    except (tarfile.TarError, EOFError) as exc:
        raise _reject(f"not a readable tar stream: {exc}") from None
    reader.drain()
    # Later members can retarget a link checked earlier, so links are judged on the finished tree.
    for rel in tally.links:
        if not _stays_inside(staging, rel):
            raise _reject(f"symlink {rel!r} resolves outside the archive")
    return tally


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(dir_fd: int, name: str) -> int | None:
    try:
        return os.open(name, dirfd.DIR_READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # not a directory (any more): replaced instead of merged into


def _merge(source_fd: int, dest_fd: int, delete: bool, protected: tuple[int, int]) -> int:
    """Move the staged entries of `source_fd` into `dest_fd`; return how many entries were deleted.

    `protected` (the scratch dir's device and inode: it may sit inside the
    workspace and holds the source) is never deleted.
    """
    names = sorted(os.listdir(source_fd))
    deleted = 0
    if delete:
        keep = set(names)
        for existing in sorted(os.listdir(dest_fd)):
            st = _lstat(dest_fd, existing)
            if existing not in keep and st is not None and (st.st_dev, st.st_ino) != protected:
                deleted += dirfd.remove(dest_fd, existing)
    for name in names:
        source_is_dir = stat.S_ISDIR(os.stat(name, dir_fd=source_fd, follow_symlinks=False).st_mode)
        dest_st = _lstat(dest_fd, name)
        if dest_st is not None and stat.S_ISDIR(dest_st.st_mode):
            if source_is_dir:
                deleted += _merge_dirs(source_fd, dest_fd, name, delete, protected)
                continue
            shutil.rmtree(name, dir_fd=dest_fd)
        elif dest_st is not None and source_is_dir:
            os.unlink(name, dir_fd=dest_fd)  # never merge into whatever a link in the destination points at
        # scratch shares the workspace's filesystem, so this is a rename
        os.replace(name, name, src_dir_fd=source_fd, dst_dir_fd=dest_fd)
    return deleted


def _merge_dirs(source_fd: int, dest_fd: int, name: str, delete: bool, protected: tuple[int, int]) -> int:
    source_child = os.open(name, dirfd.DIR_READ_FLAGS, dir_fd=source_fd)
    try:
        dest_child = _open_dir(dest_fd, name)
        if dest_child is None:  # swapped since it was looked at: replace it whole
            dirfd.remove(dest_fd, name)
            os.replace(name, name, src_dir_fd=source_fd, dst_dir_fd=dest_fd)
            return 0
        try:
            return _merge(source_child, dest_child, delete, protected)
        finally:
            os.close(dest_child)
    finally:
        os.close(source_child)


def _apply_dir_meta(dest_fd: int, meta: dict[str, tuple[int, float]]) -> None:
    # Deepest first, after all moves, so read-only directories and their mtimes are set last.
    dest = Beneath(dest_fd)
    for rel in sorted(meta, key=lambda r: r.count("/"), reverse=True):
        try:
            found = dest.locate(rel, follow_final=False, follow_links=False)
        except OSError:
            continue  # moved away meanwhile: nothing of ours to set
        try:
            if found.st is not None and stat.S_ISDIR(found.st.st_mode):
                mode, mtime = meta[rel]
                dirfd.set_mode(found.dir_fd, found.name, mode)
                os.utime(found.name, (mtime, mtime), dir_fd=found.dir_fd, follow_symlinks=False)
        finally:
            dest.release(found)


def _check_dest(agent: AgentState, guest: str) -> None:
    """Refuse a destination that cannot be a directory before reading the upload (a missing one is made)."""
    try:
        with agent.paths.locate(guest) as found:
            if found.st is not None and not stat.S_ISDIR(found.st.st_mode):
                raise OpError(
                    Code.NOT_A_DIRECTORY, f"{guest} exists and is not a directory", hint="import into a directory"
                )
    except OpError as exc:
        if exc.code != Code.PATH_NOT_FOUND:
            raise


def import_archive(agent: AgentState, args: ArchiveImportArgs, ctx: RequestContext) -> HandlerResult:
    """Unpack the uploaded tar stream (optionally compressed) into `dest`.

    Raises:
        OpError: archive_rejected for an unsafe or unreadable archive (dest untouched),
            path_outside_workspace, not_a_directory, cancelled.
    """
    guest, delete = args.dest, args.delete
    _check_dest(agent, guest)
    with agent.staging_dir("import-") as staging:
        tally = _stage(ctx, staging.fd)
        _check_cancelled(ctx)
        with agent.paths.opened(guest, dirfd.DIR_READ_FLAGS, make_dirs=True) as dest:
            deleted = _merge(staging.fd, dest.fd, delete, staging.scratch)
            _apply_dir_meta(dest.fd, tally.dir_meta)
    result = ArchiveImportResult(
        dest=WorkspacePaths.to_guest(dest.rel),
        files=tally.files,
        dirs=tally.dirs,
        symlinks=tally.symlinks,
        bytes=tally.bytes,
        deleted=deleted,
    )
    return HandlerResult(result)


class _TarInfos:
    """Tar headers from lstat results (what `gettarinfo` does, but by dir fd and name, never by path)."""

    def __init__(self) -> None:
        self._inodes: dict[tuple[int, int], str] = {}
        self._owners: dict[tuple[int, int], tuple[str, str]] = {}

    def _names(self, uid: int, gid: int) -> tuple[str, str]:
        if (uid, gid) not in self._owners:
            import grp
            import pwd

            try:
                user = pwd.getpwuid(uid).pw_name
            except KeyError:
                user = ""
            try:
                group = grp.getgrgid(gid).gr_name
            except KeyError:
                group = ""
            self._owners[(uid, gid)] = (user, group)
        return self._owners[(uid, gid)]

    def make(self, st: os.stat_result, arcname: str, dir_fd: int, name: str) -> tarfile.TarInfo | None:
        info = tarfile.TarInfo(arcname)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._inodes:
                info.type, info.linkname = tarfile.LNKTYPE, self._inodes[key]
            else:
                info.type, info.size = tarfile.REGTYPE, st.st_size
                if st.st_nlink > 1:
                    self._inodes[key] = arcname
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
        else:
            return None  # devices, fifos, sockets: skipped
        info.mode = stat.S_IMODE(mode)
        info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
        info.uname, info.gname = self._names(st.st_uid, st.st_gid)
        return info


def export_archive(agent: AgentState, args: ArchiveExportArgs, ctx: RequestContext) -> HandlerResult:
    """Stream an uncompressed tar of `path` on the data channel, less what ignore rules exclude.

    Raises:
        OpError: path_not_found, permission_denied, path_outside_workspace, cancelled,
            path_excluded (the rules exclude `path` itself).
    """
    guest = args.path
    ignore = ignore_filter(args.ignore)
    with agent.paths.locate(guest, follow_final=False) as found:
        if found.st is None:
            raise OpError(Code.PATH_NOT_FOUND, f"{guest} does not exist")
        if ignore is not None and ignore.descend(agent.paths.root_fd(), found.rel, stat.S_ISDIR(found.st.st_mode)):
            raise OpError(
                Code.PATH_EXCLUDED,
                f"{guest} is itself excluded by the ignore rules, so there is nothing to export",
                hint="name a path the rules keep, or drop the exclude pattern or .gitignore rule that matches it",
            )
        counts = {"files": 0, "dirs": 0, "symlinks": 0, "bytes": 0, "skipped": 0, "changed": 0}
        writer = _ChannelWriter(ctx)
        with tarfile.open(fileobj=cast(BinaryIO, writer), mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if not stat.S_ISDIR(found.st.st_mode):
                _add(tar, _TarInfos(), Found(posixpath.basename(found.rel), found.name, found.dir_fd, found.st), counts)
            else:
                try:
                    top = os.open(found.name, dirfd.DIR_READ_FLAGS, dir_fd=found.dir_fd)
                except OSError as exc:
                    raise agent.paths.error(exc, guest) from None
                try:
                    infos = _TarInfos()
                    prune = None if ignore is None else ignore.below(found.rel)
                    for member in walk(top, ordered=True, prune=prune):
                        _check_cancelled(ctx)
                        _add(tar, infos, member, counts)
                finally:
                    os.close(top)
        writer.flush()
    return HandlerResult(ArchiveExportResult(path=WorkspacePaths.to_guest(found.rel), **counts))


class _SizedReader:
    """A file read as exactly the size its header promised: a file that shrinks while it is
    read (a log being rotated) is padded with zeros, as GNU tar does, so the stream stays a
    valid tar; the export says how many changed."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh = fh
        self._left = size
        self.shrank = False

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(want)
        if len(data) < want:
            self.shrank = True
            data += bytes(want - len(data))
        self._left -= len(data)
        return data


def _add(tar: tarfile.TarFile, infos: _TarInfos, member: Found, counts: dict[str, int]) -> None:
    """Add one entry; a regular file is read through an fd opened without following links."""
    st = member.st
    opened = None
    if stat.S_ISREG(st.st_mode):
        opened = dirfd.open_regular(member.dir_fd, member.name)
        if opened is None:
            counts["skipped"] += 1  # replaced by something else since it was listed
            return
        st = opened[1]  # the header must describe what is read
    try:
        info = infos.make(st, member.rel, member.dir_fd, member.name)
    except OSError:
        info = None  # a link that went away since it was listed
    if info is None:
        counts["skipped"] += 1
    elif opened is not None and info.isreg():
        with os.fdopen(opened[0], "rb") as fh:
            opened = None
            reader = _SizedReader(fh, info.size)
            tar.addfile(info, reader)
        counts["files"] += 1
        counts["bytes"] += info.size
        if reader.shrank:
            counts["changed"] += 1
    else:
        tar.addfile(info)
        key = "dirs" if info.isdir() else "symlinks" if info.issym() else "files"
        counts[key] += 1
    if opened is not None:
        os.close(opened[0])


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.ARCHIVE_IMPORT: import_archive,
    Op.ARCHIVE_EXPORT: export_archive,
}
