"""The snapshots' content store: each distinct file content once, by sha256, in pack files.

One snapshot's new contents go into one new pack, `<dir>/packs/<id>.pack`:
the contents back to back, then an index (JSON rows of digest, offset and
size), then a fixed trailer saying where the index starts. A pack is
written under a temporary name, synced once and renamed into place, so
storing 20,000 files costs a handful of file operations and one fsync
rather than 20,000 of each, and a crash leaves either the whole pack or
none of it. Contents are always copied, out of the workspace and back
into it, never linked: nothing written inside /workspace can change what
a snapshot holds.

Stores made by older agents kept one file per content (`<dir>/<2 hex>/<rest>`);
those are still read, and collected once no snapshot needs them.

Imports: the agent's `fs` layer and the standard library only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from roost.agent.fs.dirfd import fsync_dir

CHUNK = 1 << 20
PACKS = "packs"
PACK_SUFFIX = ".pack"
TRAILER = struct.Struct(">Q8s")  # index offset, magic
MAGIC = b"roostpk1"
# A pack whose live contents fall below this share of it is rewritten when a snapshot is deleted.
REPACK_BELOW = 0.5
# copy_file_range is refused across some filesystems and by old kernels: plain reads and writes then.
_NO_COPY_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF)


@dataclass(frozen=True)
class Located:
    """Where one content lives: a pack and a byte range in it, or (size only) a loose file."""

    pack: str | None
    offset: int
    size: int


def copy_range(source_fd: int, dest_fd: int, offset: int, size: int) -> None:
    """Copy `size` bytes at `offset` of `source_fd` to the current position of `dest_fd`.

    Raises:
        OSError: the copy failed, or the source ended early (EIO).
    """
    left, at = size, offset
    try:
        while left > 0:
            done = os.copy_file_range(source_fd, dest_fd, left, at)
            if done == 0:
                raise OSError(errno.EIO, f"content ended {left} bytes early")
            left -= done
            at += done
        return
    except OSError as exc:
        if exc.errno not in _NO_COPY_RANGE or left != size:
            raise
    while left > 0:
        chunk = os.pread(source_fd, min(CHUNK, left), at)
        if not chunk:
            raise OSError(errno.EIO, f"content ended {left} bytes early")
        view = memoryview(chunk)
        while view:
            view = view[os.write(dest_fd, view) :]
        left -= len(chunk)
        at += len(chunk)


class PackWriter:
    """One new pack being filled: `add` copies contents in, `commit` makes them durable and visible."""

    def __init__(self, store: ContentStore) -> None:
        self._store = store
        # makedirs gives `mode` to the last directory only: both are private.
        for directory in (store.directory, store.packs):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        self.name = os.urandom(8).hex()
        self._temp = os.path.join(store.packs, f".tmp-{self.name}")
        self._fd = -1  # opened on the first content: a snapshot of unchanged files makes no file at all
        self._end = 0
        self._rows: dict[str, tuple[int, int]] = {}
        self.new_bytes = 0

    def has(self, digest: str) -> bool:
        return digest in self._rows or self._store.has(digest)

    def add(self, source_fd: int, on_chunk: Callable[[bytes], None] | None = None) -> tuple[str, int]:
        """Copy the open file `source_fd` in from where it stands, hashing what is read; (digest, size).

        A file changing under us is stored as read. A content the store
        already holds takes no space. `on_chunk` sees every chunk read.
        """
        return self.add_chunks(iter(lambda: os.read(source_fd, CHUNK), b""), on_chunk)

    def add_chunks(self, chunks: Iterable[bytes], on_chunk: Callable[[bytes], None] | None = None) -> tuple[str, int]:
        """As `add`, for a content given as the chunks it is made of."""
        digest = hashlib.sha256()
        start = self._end
        os.lseek(self._file(), start, os.SEEK_SET)
        size = 0
        for chunk in chunks:
            digest.update(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
            size += len(chunk)
        name = digest.hexdigest()
        if not self.has(name):
            self._rows[name] = (start, size)
            self._end = start + size
            self.new_bytes += size
        return name, size

    def add_range(self, digest: str, source_fd: int, offset: int, size: int) -> None:
        """Copy a content whose digest is known (repacking) from a byte range of `source_fd`."""
        if digest in self._rows:
            return
        os.lseek(self._file(), self._end, os.SEEK_SET)
        copy_range(source_fd, self._fd, offset, size)
        self._rows[digest] = (self._end, size)
        self._end += size

    def _file(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self._temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return self._fd

    def commit(self) -> str | None:
        """Append the index, sync, and put the pack in place; its name, or None when it held nothing new."""
        if not self._rows:
            self.abort()
            return None
        index = json.dumps([[d, o, s] for d, (o, s) in self._rows.items()], separators=(",", ":")).encode()
        os.ftruncate(self._fd, self._end)
        os.lseek(self._fd, self._end, os.SEEK_SET)
        for piece in (index, TRAILER.pack(self._end, MAGIC)):
            view = memoryview(piece)
            while view:
                view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.replace(self._temp, self._store.pack_path(self.name))
        fsync_dir(self._store.packs)
        self._store.register(self.name, self._rows)
        return self.name

    def abort(self) -> None:
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass


class PackReader:
    """Copies contents out of the store, keeping each pack it reads open until `close`."""

    def __init__(self, store: ContentStore) -> None:
        self._store = store
        self._fds: dict[str, int] = {}

    def copy_to(self, digest: str, dest_fd: int) -> None:
        """As `ContentStore.copy_to`."""
        found = self._store.locate(digest)
        if found is None or found.pack is None:
            self._store.copy_to(digest, dest_fd)  # absent (it raises) or a loose file of an older agent
            return
        fd = self._fds.get(found.pack)
        if fd is None:
            fd = self._fds[found.pack] = os.open(self._store.pack_path(found.pack), os.O_RDONLY | os.O_CLOEXEC)
        copy_range(fd, dest_fd, found.offset, found.size)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class ContentStore:
    """Distinct file contents by sha256; written a pack at a time, read by digest.

    The index of every pack is read once and kept in memory: this agent is
    the store's only writer. `lock` guards the in-memory index, so readers
    (a diff loading old contents) may run while a snapshot is written.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.packs = os.path.join(directory, PACKS)
        self._index: dict[str, Located] | None = None
        self._any_loose = True  # until the index is loaded and says otherwise
        self._lock = threading.Lock()

    # -- where things are ------------------------------------------------------
    def pack_path(self, name: str) -> str:
        return os.path.join(self.packs, name + PACK_SUFFIX)

    def loose_path(self, digest: str) -> str:
        return os.path.join(self.directory, digest[:2], digest[2:])

    def _loaded(self) -> dict[str, Located]:
        if self._index is None:
            index: dict[str, Located] = {}
            for name, rows in _read_packs(self.packs):
                for digest, (offset, size) in rows.items():
                    index.setdefault(digest, Located(name, offset, size))
            self._index = index
            self._any_loose = next(self._loose(), None) is not None
        return self._index

    def register(self, pack: str, rows: dict[str, tuple[int, int]]) -> None:
        with self._lock:
            index = self._loaded()
            for digest, (offset, size) in rows.items():
                index.setdefault(digest, Located(pack, offset, size))

    def locate(self, digest: str) -> Located | None:
        with self._lock:
            found = self._loaded().get(digest)
            any_loose = self._any_loose
        if found is not None or not any_loose:
            return found
        try:
            return Located(None, 0, os.stat(self.loose_path(digest)).st_size)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def has(self, digest: str) -> bool:
        return self.locate(digest) is not None

    def content_bytes(self) -> int:
        """The bytes of every distinct content stored (not counting indexes)."""
        with self._lock:
            packed = {d: loc.size for d, loc in self._loaded().items()}
        return sum(packed.values()) + sum(size for _, size in self._loose())

    # -- reading -----------------------------------------------------------------
    @contextmanager
    def opened(self, digest: str) -> Iterator[tuple[int, Located]]:
        """The file holding `digest`, open for reading, and where in it the content lies.

        Raises:
            FileNotFoundError: the store does not hold it.
        """
        with self._lock:
            found = self._loaded().get(digest)
            # Opened under the lock: a repack may unlink the pack, never while we open it.
            fd = os.open(self.pack_path(found.pack), os.O_RDONLY | os.O_CLOEXEC) if found and found.pack else -1
        if found is None:
            fd = os.open(self.loose_path(digest), os.O_RDONLY | os.O_CLOEXEC)
            found = Located(None, 0, os.fstat(fd).st_size)
        try:
            yield fd, found
        finally:
            os.close(fd)

    def read(self, digest: str) -> bytes:
        with self.opened(digest) as (fd, where):
            return os.pread(fd, where.size, where.offset) if where.size else b""

    def copy_to(self, digest: str, dest_fd: int) -> None:
        """Write the content to `dest_fd` at its current position (a copy: the store never shares an inode).

        Raises:
            FileNotFoundError: the store does not hold it.
        """
        with self.opened(digest) as (fd, where):
            copy_range(fd, dest_fd, where.offset, where.size)

    @contextmanager
    def reading(self) -> Iterator[PackReader]:
        """Many `copy_to`s with each pack opened once; for callers that hold off collection meanwhile."""
        reader = PackReader(self)
        try:
            yield reader
        finally:
            reader.close()

    # -- writing and collecting ----------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[PackWriter]:
        """A new pack, committed when the block ends normally and discarded when it raises."""
        writer = PackWriter(self)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def reload(self) -> None:
        """Read the packs' indexes again on next use (packs may have been linked in from outside)."""
        with self._lock:
            self._index = None

    def unverified_pack(self) -> str | None:
        """The first pack holding a content that does not hash to the digest its index gives it, if any.

        A pack linked in from another workspace's store was written where that workspace could
        write: its index is checked before this store trusts it, as a streamed content is.
        """
        for name, rows in _read_packs(self.packs):
            fd = os.open(self.pack_path(name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if any(not _holds(fd, digest, offset, size) for digest, (offset, size) in rows.items()):
                    return name
            finally:
                os.close(fd)
        return None

    def collect(self, live: set[str], *, repack: bool = True) -> None:
        """Drop what no snapshot needs: whole packs, loose files, and (with `repack`) the dead part of
        mostly dead packs."""
        for digest, _ in self._loose():
            if digest not in live:
                os.unlink(self.loose_path(digest))
        with self._lock:
            self._index = None  # read again on next use, loose contents included
        for name, rows in _read_packs(self.packs, with_temps=True):
            kept = {d: r for d, r in rows.items() if d in live}
            total = sum(size for _, size in rows.values())
            if kept and (not repack or sum(size for _, size in kept.values()) >= total * REPACK_BELOW):
                continue
            if kept:
                self._repack(name, kept)
            self._drop(name)

    def _repack(self, name: str, kept: dict[str, tuple[int, int]]) -> None:
        fd = os.open(self.pack_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            with self.writing() as writer:
                for digest, (offset, size) in kept.items():
                    writer.add_range(digest, fd, offset, size)
        finally:
            os.close(fd)

    def _drop(self, name: str) -> None:
        with self._lock:
            # Read again on next use: a content the dropped pack shared with another must point at the survivor.
            self._index = None
            for path in (self.pack_path(name), os.path.join(self.packs, f".tmp-{name}")):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def _loose(self) -> Iterator[tuple[str, int]]:
        if not os.path.isdir(self.directory):
            return
        for prefix in os.listdir(self.directory):
            folder = os.path.join(self.directory, prefix)
            if len(prefix) == 2 and os.path.isdir(folder):
                for rest in os.listdir(folder):
                    yield prefix + rest, os.stat(os.path.join(folder, rest)).st_size


def _read_packs(directory: str, with_temps: bool = False) -> Iterator[tuple[str, dict[str, tuple[int, int]]]]:
    """(name, {digest: (offset, size)}) of every pack; one that does not read back whole holds nothing.

    With `with_temps`, packs a crash left half written come too (empty), so they are collected.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for file_name in sorted(names):
        if file_name.endswith(PACK_SUFFIX):
            name = file_name[: -len(PACK_SUFFIX)]
            yield name, _read_index(os.path.join(directory, file_name))
        elif with_temps and file_name.startswith(".tmp-"):
            yield file_name[len(".tmp-") :], {}


def _read_index(path: str) -> dict[str, tuple[int, int]]:
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end < TRAILER.size:
                return {}
            fh.seek(end - TRAILER.size)
            offset, magic = TRAILER.unpack(fh.read(TRAILER.size))
            if magic != MAGIC or offset > end - TRAILER.size:
                return {}
            fh.seek(offset)
            rows = json.loads(fh.read(end - TRAILER.size - offset))
        return {str(d): (int(o), int(s)) for d, o, s in rows if int(o) + int(s) <= offset}
    except (OSError, ValueError, TypeError):
        return {}


def _holds(fd: int, digest: str, offset: int, size: int) -> bool:
    """Whether the `size` bytes at `offset` of `fd` hash to `digest`."""
    hashed = hashlib.sha256()
    while size:
        chunk = os.pread(fd, min(CHUNK, size), offset)
        if not chunk:
            return False
        hashed.update(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return hashed.hexdigest() == digest
