"""Workspace trees as data: a scan of every path, and a content-addressed blob store.

A scan records, per path, its kind, mode, size, symlink target and (for
files) the sha256 of its content. Hashing is skipped for files whose inode,
size, mtime and ctime match the previous scan, the way git's index does, so
rescanning a large unchanged tree costs one stat per path. Symlinks are
recorded as links and never followed: the walk goes by directory fds and
opens files with O_NOFOLLOW, so an entry swapped while the scan runs is
recorded as what it has become.

A scan given a `Keeper` (the content store's pack writer) also keeps every
content the keeper lacks, copied while it is hashed: taking a snapshot is
one pass over the tree that reads each new file once.

Imports: the agent's `fs` layer and the standard library only.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from roost.agent.fs.dirtree import DIR_READ_FLAGS, Found, Pruner, walk

CHUNK = 1 << 20
FILE, DIR, SYMLINK, OTHER = "file", "dir", "symlink", "other"
# O_NONBLOCK: a file swapped for a fifo is not waited on.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Entry:
    path: str
    kind: str
    mode: int
    size: int = 0
    digest: str | None = None
    target: str | None = None
    ino: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    binary: bool | None = None  # for files read by a scan: not text (a NUL early on, or not UTF-8)

    def same_content(self, other: Entry) -> bool:
        return self.kind == other.kind and self.digest == other.digest and self.target == other.target

    def to_row(self) -> list[object]:
        return [
            self.path,
            self.kind,
            self.mode,
            self.size,
            self.digest,
            self.target,
            self.ino,
            self.mtime_ns,
            self.ctime_ns,
            self.binary,
        ]

    @classmethod
    def from_row(cls, row: list[object]) -> Entry:
        path, kind, mode, size, digest, target, ino, mtime_ns, ctime_ns = row[:9]
        binary = row[9] if len(row) > 9 else None  # rows of older agents have no such column
        return cls(
            str(path),
            str(kind),
            int(str(mode)),
            int(str(size)),
            None if digest is None else str(digest),
            None if target is None else str(target),
            int(str(ino)),
            int(str(mtime_ns)),
            int(str(ctime_ns)),
            None if binary is None else bool(binary),
        )


Tree = dict[str, Entry]


class Keeper(Protocol):
    """Where a scan keeps the contents it reads (see `content.PackWriter`)."""

    def has(self, digest: str) -> bool: ...

    def add(self, source_fd: int, on_chunk: Callable[[bytes], None] | None = None) -> tuple[str, int]: ...


class Hashed(NamedTuple):
    """What reading one file found: its digest, the bytes read, whether it is binary, and its fstat."""

    digest: str
    size: int
    binary: bool
    st: os.stat_result


class TextCheck:
    """Whether bytes fed in order are binary as a diff sees it: a NUL in the first 8 KiB, or not UTF-8."""

    HEAD = 8192

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._seen = 0
        self._binary = False

    def feed(self, chunk: bytes) -> None:
        if self._binary:
            return
        if self._seen < self.HEAD and b"\0" in chunk[: self.HEAD - self._seen]:
            self._binary = True
            return
        self._seen += len(chunk)
        if chunk.isascii() and not self._decoder.getstate()[0]:
            return  # ASCII with no sequence pending is UTF-8: no need to decode (the common case, and fast)
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError:
            self._binary = True

    @property
    def binary(self) -> bool:
        if not self._binary:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._binary = True
        return self._binary


def is_binary(data: bytes) -> bool:
    """Whether a whole file's bytes are binary as a diff sees them (`TextCheck`'s answer, at once)."""
    if b"\0" in data[: TextCheck.HEAD]:
        return True
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def hash_file(dir_fd: int, name: str) -> Hashed:
    """sha256 of the regular file `name` in `dir_fd`, whether it is binary, and the fstat of what was read.

    Raises:
        OSError: it is gone, unreadable, or no longer a regular file (ELOOP for a link, EINVAL otherwise).
    """
    fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{name!r} is not a regular file any more")
        # One byte more than its size: a file read whole is seen to end (os.read makes a buffer that big).
        want = min(st.st_size + 1, CHUNK)
        first = os.read(fd, want)
        if len(first) < want:
            # Most files are read whole at once: no incremental decoder for them (a tree has thousands).
            return Hashed(hashlib.sha256(first).hexdigest(), len(first), is_binary(first), st)
        digest = hashlib.sha256(first)
        text = TextCheck()
        text.feed(first)
        size = len(first)
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            text.feed(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return Hashed(digest.hexdigest(), size, text.binary, st)


def keep_file(dir_fd: int, name: str, keeper: Keeper) -> Hashed:
    """Copy the regular file `name` in `dir_fd` into `keeper`, hashing it as `hash_file` does.

    Raises:
        OSError: as `hash_file`.
    """
    fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{name!r} is not a regular file any more")
        text = TextCheck()
        digest, size = keeper.add(fd, text.feed)
    finally:
        os.close(fd)
    return Hashed(digest, size, text.binary, st)


# Files changed this close before the previous scan may have changed again
# within the same timestamp tick (coarse-clock kernels): never trust those.
# Coarse kernel clocks tick every 1-10 ms; 50 ms leaves a wide margin.
RACY_NS = 50_000_000


def scan(
    root_fd: int,
    previous: Tree | None = None,
    exclude: frozenset[str] = frozenset(),
    previous_at_ns: int = 0,
    racy_ns: int = RACY_NS,
    keeper: Keeper | None = None,
    prune: Pruner | None = None,
) -> Tree:
    """Every path under directory `root_fd` (relative, '/'-separated), hashing only what changed since `previous`.

    `root_fd` may be an O_PATH descriptor. `previous_at_ns` is when
    `previous` was taken; a cached hash is reused only for files last
    modified well before then (git's racy-clean rule). With a `keeper`,
    every file content it does not have yet is read into it. What `prune`
    excludes is neither listed nor read.
    """
    previous = previous or {}
    trusted_before = previous_at_ns - racy_ns
    tree: Tree = {}
    top = os.open(".", DIR_READ_FLAGS, dir_fd=root_fd)
    try:
        for found in walk(top, exclude=exclude, prune=prune):
            rel, st = found.rel, found.st
            known = previous.get(rel)
            if stat.S_ISREG(st.st_mode) and _unchanged(known, st, trusted_before) and _kept(known, keeper):
                # The common case, inline: one stat per path, nothing read.
                tree[rel] = _file_entry(rel, st, known)
                continue
            entry = _entry(found, known, trusted_before, keeper)
            if entry is not None:
                tree[rel] = entry
    finally:
        os.close(top)
    return tree


def _unchanged(known: Entry | None, st: os.stat_result, trusted_before: int) -> bool:
    """Whether the hash of the previous scan still holds for a file with this stat (git's racy-clean rule)."""
    return (
        known is not None
        and known.kind == FILE
        and (known.ino, known.size, known.mtime_ns, known.ctime_ns)
        == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        and max(st.st_mtime_ns, st.st_ctime_ns) < trusted_before
        and known.binary is not None  # an older agent's scan did not say: read it once more
    )


def _kept(known: Entry | None, keeper: Keeper | None) -> bool:
    return keeper is None or (known is not None and known.digest is not None and keeper.has(known.digest))


def _file_entry(rel: str, st: os.stat_result, known: Entry | Hashed | None) -> Entry:
    """A file's entry: its stat now, and digest, size and binary from `known` (the previous scan, or a read)."""
    size = known.size if isinstance(known, Hashed) else st.st_size
    return Entry(
        rel,
        FILE,
        stat.S_IMODE(st.st_mode),
        size,
        None if known is None else known.digest,
        None,
        st.st_ino,
        st.st_mtime_ns,
        st.st_ctime_ns,
        None if known is None else known.binary,
    )


def _entry(
    found: Found, known: Entry | None, trusted_before: int, keeper: Keeper | None = None, retried: bool = False
) -> Entry | None:
    """The scan record of one entry; None when it vanished (or cannot be read) while we looked."""
    rel, st = found.rel, found.st
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return Entry(rel, DIR, mode)
    if stat.S_ISLNK(st.st_mode):
        try:
            return Entry(rel, SYMLINK, mode, target=os.readlink(found.name, dir_fd=found.dir_fd))
        except OSError:
            return None if retried else _again(found, known, trusted_before, keeper)
    if not stat.S_ISREG(st.st_mode):
        return Entry(rel, OTHER, mode)
    if known is not None and _unchanged(known, st, trusted_before) and _kept(known, keeper):
        return _file_entry(rel, st, known)
    try:
        hashed = hash_file(found.dir_fd, found.name) if keeper is None else keep_file(found.dir_fd, found.name, keeper)
    except PermissionError:
        return None
    except OSError:
        return None if retried else _again(found, known, trusted_before, keeper)
    return _file_entry(rel, hashed.st, hashed)


def _again(found: Found, known: Entry | None, trusted_before: int, keeper: Keeper | None) -> Entry | None:
    """It changed kind while scanned (a file swapped for a link, say): record what is there now."""
    try:
        st = os.stat(found.name, dir_fd=found.dir_fd, follow_symlinks=False)
    except OSError:
        return None
    return _entry(Found(found.rel, found.name, found.dir_fd, st), known, trusted_before, keeper, retried=True)
