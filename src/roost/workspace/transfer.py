"""Host-side tar streams for seeding and `sync push`.

A host directory is packed into an uncompressed tar on the fly by a producer
thread into a bounded queue, so memory stays flat whatever the tree's size.
The tree is walked relative to directory fds with `O_NOFOLLOW` (see
`host_tree`): a symlink inside it is sent as a link for the agent to judge
and never followed here, and an entry swapped for a link mid-walk fails the
transfer instead of being read through. Sockets, fifos and devices are left
out. A tar file (any compression tarfile reads) is streamed as it is; the
agent checks every member (links that leave the archive are rejected there).

Imports: confinement, errors, workspace.host_tree and the standard library only.
"""

from __future__ import annotations

import os
import queue
import stat
import tarfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from roost.confinement import HostArg
from roost.errors import InvalidArgument, RoostError
from roost.workspace.host_tree import DIR_FLAGS, ENTRY_FLAGS, HostPath, host_path, open_entry

__all__ = ["SourceStream", "copy_source", "tar_stream"]

CHUNK = 1024 * 1024
_QUEUE_DEPTH = 8
SEED_MISSING = "seed_not_found"

_Item = bytes | BaseException | None


class _QueueWriter:
    """A write-only file object feeding fixed-size chunks into a queue."""

    def __init__(self, out: queue.Queue[_Item]) -> None:
        self._out = out
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= CHUNK:
            self._out.put(bytes(self._buf[:CHUNK]))
            del self._buf[:CHUNK]
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._out.put(bytes(self._buf))
            self._buf.clear()


def _changed(where: HostPath, name: str) -> InvalidArgument:
    return InvalidArgument(
        f"{name!r} in {where.shown!r} changed while it was being copied",
        code="seed_unreadable",
        hint="copy from a tree nothing else is changing",
    )


class _TreePacker:
    """Writes the tree under an open directory fd to a tar, never following a link."""

    def __init__(self, where: HostPath, tar: tarfile.TarFile, stop: threading.Event) -> None:
        self.where = where
        self.tar = tar
        self.stop = stop
        self.first_name: dict[tuple[int, int], str] = {}  # hard-linked files go once, then as links

    def info(self, name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.mtime = int(st.st_mtime)
        info.uid = info.gid = 0  # the host's owners mean nothing inside a workspace
        return info

    def pack(self, root_fd: int) -> None:
        # A stack of open directories, deepest last: parents go before children, names sorted.
        stack: list[tuple[int, str, Iterator[str]]] = [(root_fd, "", iter(sorted(os.listdir(root_fd))))]
        try:
            while stack:
                fd, prefix, names = stack[-1]
                name = next(names, None)
                if name is None:
                    stack.pop()
                    if fd != root_fd:
                        os.close(fd)
                    continue
                if self.stop.is_set():
                    return
                child = self.entry(fd, name, prefix + name)
                if child is not None:
                    stack.append((child, f"{prefix}{name}/", iter(sorted(os.listdir(child)))))
        finally:
            for fd, _prefix, _names in stack:
                if fd != root_fd:
                    os.close(fd)

    def entry(self, parent: int, name: str, arcname: str) -> int | None:
        """Add one entry; return the fd of a directory to descend into."""
        try:
            st = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            return None  # deleted since the listing
        if stat.S_ISLNK(st.st_mode):
            info = self.info(arcname, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=parent)
            self.tar.addfile(info)
            return None
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            return None  # sockets, fifos and devices have no place in a workspace
        flags = DIR_FLAGS if stat.S_ISDIR(st.st_mode) else ENTRY_FLAGS
        try:
            fd = os.open(name, flags, dir_fd=parent)
        except OSError:
            raise _changed(self.where, arcname) from None
        opened = os.fstat(fd)
        if stat.S_IFMT(opened.st_mode) != stat.S_IFMT(st.st_mode):
            os.close(fd)
            raise _changed(self.where, arcname)
        if stat.S_ISDIR(opened.st_mode):
            try:
                self.where.check(fd)
                self.tar.addfile(self.info(arcname, opened, tarfile.DIRTYPE))
            except BaseException:
                os.close(fd)
                raise
            return fd
        self.add_file(fd, opened, arcname)
        return None

    def add_file(self, fd: int, opened: os.stat_result, arcname: str) -> None:
        """Add the open regular file `fd` (closed here), or a hard link to where it already went."""
        with os.fdopen(fd, "rb", closefd=True) as fh:
            os.set_blocking(fd, True)
            key = (opened.st_dev, opened.st_ino)
            if opened.st_nlink > 1 and key in self.first_name:
                info = self.info(arcname, opened, tarfile.LNKTYPE)
                info.linkname = self.first_name[key]
                self.tar.addfile(info)
                return
            if opened.st_nlink > 1:
                self.first_name[key] = arcname
            info = self.info(arcname, opened, tarfile.REGTYPE)
            info.size = opened.st_size
            self.tar.addfile(info, fh)  # exactly `size` bytes, or an error if the file shrank


def _pack(fill: Callable[[_TreePacker], None], where: HostPath, out: queue.Queue[_Item], stop: threading.Event) -> None:
    writer = _QueueWriter(out)
    try:
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            fill(_TreePacker(where, tar, stop))
        writer.flush()
        out.put(None)
    except BaseException as exc:  # handed to the consumer, raised there
        out.put(exc)


class SourceStream:
    """The tar stream of one opened host source, for one upload.

    The source is opened (and checked) on construction; iterating streams
    it once. The fd is closed when the stream ends, or when the object is
    collected unused (a create that failed before uploading its seed).
    """

    def __init__(self, where: HostPath, fd: int, is_dir: bool, *, member: str | None = None) -> None:
        self.where = where
        self.is_dir = is_dir
        self.member = member
        self._fd = fd
        self._close = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        self._close()

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self.is_dir:
                yield from self._packed(lambda packer: packer.pack(self._fd))
            elif self.member is not None:
                yield from self._packed(self._one_file)
            else:
                yield from self._file()
        finally:
            self.close()

    def _one_file(self, packer: _TreePacker) -> None:
        assert self.member is not None
        packer.add_file(os.dup(self._fd), os.fstat(self._fd), self.member)

    def _file(self) -> Iterator[bytes]:
        os.lseek(self._fd, 0, os.SEEK_SET)
        while chunk := os.read(self._fd, CHUNK):
            yield chunk

    def _packed(self, fill: Callable[[_TreePacker], None]) -> Iterator[bytes]:
        out: queue.Queue[_Item] = queue.Queue(maxsize=_QUEUE_DEPTH)
        stop = threading.Event()
        producer = threading.Thread(target=_pack, args=(fill, self.where, out, stop), name="tar-pack", daemon=True)
        producer.start()
        try:
            while True:
                item = out.get()
                if item is None:
                    return
                if isinstance(item, RoostError):
                    raise item
                if isinstance(item, BaseException):
                    raise InvalidArgument(f"cannot pack {self.where.shown!r}: {item}", code="seed_unreadable") from None
                yield item
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    out.get_nowait()
                except queue.Empty:
                    producer.join(0.01)


def _is_tar(fd: int) -> bool:
    with os.fdopen(os.dup(fd), "rb") as fh:
        return tarfile.is_tarfile(fh)


def tar_stream(source: HostArg, *, home: Path) -> SourceStream:
    """An uncompressed (or the file's own) tar stream of a host directory or tar file, opened now.

    A `ConfinedPath` is opened beneath its root and may not reach into
    `home`; any other path is the caller's own and is resolved once.

    Raises:
        NotFound: seed_not_found when the source does not exist.
        InvalidArgument: seed_invalid when it is neither a directory nor a tar archive;
            path_not_allowed when the way to it passes through a symlink (or roost's state).
    """
    where = host_path(source, home=home)
    fd, st = open_entry(where, missing=SEED_MISSING)
    try:
        if stat.S_ISDIR(st.st_mode):
            return SourceStream(where, fd, is_dir=True)
        if _is_tar(fd):
            return SourceStream(where, fd, is_dir=False)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    raise InvalidArgument(
        f"seed path {where.shown!r} is neither a directory nor a tar archive",
        code="seed_invalid",
        hint="give a directory, or a .tar/.tar.gz file",
    )


def copy_source(source: HostArg, *, member: str, home: Path) -> SourceStream:
    """A tar stream of a host directory (its contents), or of one regular file as `member`, opened now.

    Unlike `tar_stream`, a tar file is a file like any other here: it is copied, never unpacked.

    Raises:
        NotFound: seed_not_found when the source does not exist.
        InvalidArgument: not_a_file for a socket, fifo or device; path_not_allowed as for `tar_stream`.
    """
    where = host_path(source, home=home)
    fd, st = open_entry(where, missing=SEED_MISSING)
    if stat.S_ISDIR(st.st_mode):
        return SourceStream(where, fd, is_dir=True)
    if stat.S_ISREG(st.st_mode):
        return SourceStream(where, fd, is_dir=False, member=member)
    os.close(fd)
    raise InvalidArgument(
        f"{where.shown!r} is neither a regular file nor a directory",
        code="not_a_file",
        hint="copy a file or a directory; sockets, fifos and devices do not cross",
    )
