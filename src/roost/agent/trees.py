"""Workspace trees as data: a scan of every path, and a content-addressed blob store.

A scan records, per path, its kind, mode, size, symlink target and (for
files) the sha256 of its content. Hashing is skipped for files whose inode,
size, mtime and ctime match the previous scan, the way git's index does, so
rescanning a large unchanged tree costs one stat per path. Symlinks are
recorded as links and never followed.

The store keeps each distinct content once under `<dir>/<2 hex>/<rest>`;
snapshots of a tree whose content is already stored cost only their manifest.

Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 1 << 20
FILE, DIR, SYMLINK, OTHER = "file", "dir", "symlink", "other"


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
        ]

    @classmethod
    def from_row(cls, row: list[object]) -> Entry:
        path, kind, mode, size, digest, target, ino, mtime_ns, ctime_ns = row
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
        )


Tree = dict[str, Entry]


def hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: str, exclude: frozenset[str]) -> Iterator[tuple[str, os.stat_result]]:
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as it:
                children = list(it)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for child in children:
            rel = prefix + child.name
            if rel in exclude:
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we looked
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                pending.append((child.path, rel + "/"))


# Files changed this close before the previous scan may have changed again
# within the same timestamp tick (coarse-clock kernels): never trust those.
# Coarse kernel clocks tick every 1-10 ms; 50 ms leaves a wide margin.
RACY_NS = 50_000_000


def scan(
    root: str,
    previous: Tree | None = None,
    exclude: frozenset[str] = frozenset(),
    previous_at_ns: int = 0,
    racy_ns: int = RACY_NS,
) -> Tree:
    """Every path under `root` (relative, '/'-separated), hashing only what changed since `previous`.

    `previous_at_ns` is when `previous` was taken; a cached hash is reused
    only for files last modified well before then (git's racy-clean rule).
    """
    previous = previous or {}
    trusted_before = previous_at_ns - racy_ns
    tree: Tree = {}
    for rel, st in _walk(root, exclude):
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            tree[rel] = Entry(rel, DIR, mode)
        elif stat.S_ISLNK(st.st_mode):
            tree[rel] = Entry(rel, SYMLINK, mode, target=os.readlink(os.path.join(root, rel)))
        elif stat.S_ISREG(st.st_mode):
            known = previous.get(rel)
            if (
                known is not None
                and known.kind == FILE
                and (known.ino, known.size, known.mtime_ns, known.ctime_ns)
                == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                and max(st.st_mtime_ns, st.st_ctime_ns) < trusted_before
            ):
                digest = known.digest
            else:
                try:
                    digest = hash_file(os.path.join(root, rel))
                except (FileNotFoundError, PermissionError):
                    continue
            tree[rel] = Entry(rel, FILE, mode, st.st_size, digest, None, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        else:
            tree[rel] = Entry(rel, OTHER, mode)
    return tree


class ContentStore:
    """Distinct file contents by sha256, written once, read by digest."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, digest: str) -> str:
        return os.path.join(self.directory, digest[:2], digest[2:])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def add(self, source: str) -> str:
        """Copy `source` in (hashing as it is read, so a file changing under us is stored as read)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        digest = hashlib.sha256()
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".in-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            name = digest.hexdigest()
            final = self.path(name)
            if os.path.exists(final):
                os.unlink(temp)
            else:
                os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
                os.replace(temp, final)
            return name
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise

    def read(self, digest: str) -> bytes:
        with open(self.path(digest), "rb") as fh:
            return fh.read()
