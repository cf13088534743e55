"""Snapshot bundles: one snapshot as a byte stream, so that another workspace can come to hold the same tree.

A fork streams its parent's snapshot through the host into each child. The
bundle is `MAGIC`, the length of a JSON header (8 bytes, big-endian), the
header `{"entries": [manifest rows], "contents": [[digest, size], ...]}`,
then each listed content's bytes back to back, each distinct content once.
It is read from the content store, never from the live tree, so it is the
snapshot exactly, whatever the sender's workspace does meanwhile.

The receiver trusts nothing in it: a bundle comes from another workspace.
Every row must be a plain relative path of a file, directory or symlink
whose parent directory the bundle holds, with permission bits only; every
content is hashed as it arrives and must match its digest and size; every
file's content must have come with the bundle or be in the store already.

Imports: this package's `content` and `trees`, protocol and the standard library only.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from roost.agent.snapshots.content import CHUNK, ContentStore, PackWriter
from roost.agent.snapshots.trees import DIR, FILE, SYMLINK, Entry, Tree
from roost.protocol import Code, OpError

MAGIC = b"roostbd1"
LENGTH = struct.Struct(">Q")
# A manifest row is ~150 bytes: this allows a few million paths and refuses a header meant to exhaust memory.
MAX_HEADER_BYTES = 512 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SENT_KINDS = (FILE, DIR, SYMLINK)


def bundle_pieces(tree: Tree, blobs: ContentStore, *, with_contents: bool = True) -> Iterator[bytes]:
    """The bundle of `tree`, in pieces of at most `CHUNK` bytes of content (`with_contents` False:
    its manifest alone, for a receiver that holds every content already).

    The caller holds the store's lock, so no content is collected while it is read.
    """
    contents: dict[str, int] = {}
    for entry in tree.values():
        if with_contents and entry.kind == FILE and entry.digest is not None:
            contents.setdefault(entry.digest, entry.size)
    header = json.dumps(
        {"entries": [e.to_row() for e in tree.values() if e.kind in _SENT_KINDS], "contents": list(contents.items())},
        separators=(",", ":"),
    ).encode()
    yield MAGIC + LENGTH.pack(len(header)) + header
    for digest in contents:
        with blobs.opened(digest) as (fd, where):
            done = 0
            while done < where.size:
                piece = _pread(fd, min(CHUNK, where.size - done), where.offset + done)
                done += len(piece)
                yield piece


def _pread(fd: int, size: int, offset: int) -> bytes:
    piece = os.pread(fd, size, offset)
    if not piece:
        raise OSError(f"a stored content ended {size} bytes early")
    return piece


@dataclass(frozen=True)
class Received:
    """A bundle taken in: its tree (checked) and what its contents added to the store."""

    tree: Tree
    stored_bytes: int


def receive_bundle(chunks: Iterator[bytes], writer: PackWriter) -> Received:
    """Read a bundle from `chunks`, checking everything and adding its contents to `writer`'s pack.

    Raises:
        OpError: invalid_argument naming what is wrong with the bundle (the caller's pack is then discarded).
    """
    stream = _Stream(chunks)
    if stream.exact(len(MAGIC)) != MAGIC:
        raise _bad("it does not start as a snapshot bundle")
    (length,) = LENGTH.unpack(stream.exact(LENGTH.size))
    if length > MAX_HEADER_BYTES:
        raise _bad(f"its header of {length} bytes is over the {MAX_HEADER_BYTES}-byte limit")
    try:
        header = json.loads(stream.exact(length))
        contents = [(str(d), int(s)) for d, s in header["contents"]]
        rows = header["entries"]
    except (ValueError, TypeError, KeyError) as exc:
        raise _bad(f"its header is not readable: {exc}") from None
    for digest, size in contents:
        if not _DIGEST.fullmatch(digest) or size < 0:
            raise _bad(f"a content is listed as {digest!r} of {size} bytes")
        stored, stored_size = writer.add_chunks(stream.take(size))
        if (stored, stored_size) != (digest, size):
            raise _bad(f"content {digest[:12]}… does not match its digest")
    if not stream.at_end():
        raise _bad("it goes on after its last content")
    tree = _checked_tree(rows, {d for d, _ in contents}, writer)
    return Received(tree, writer.new_bytes)


def _checked_tree(rows: object, sent: set[str], writer: PackWriter) -> Tree:
    if not isinstance(rows, list):
        raise _bad("its entries are not a list")
    tree: Tree = {}
    for row in rows:
        try:
            entry = Entry.from_row(row)
        except (ValueError, TypeError) as exc:
            raise _bad(f"an entry is not readable: {exc}") from None
        _check_entry(entry, sent, writer)
        if entry.path in tree:
            raise _bad(f"{entry.path!r} is listed twice")
        tree[entry.path] = entry
    for path in tree:
        parent = path.rpartition("/")[0]
        if parent and (parent not in tree or tree[parent].kind != DIR):
            raise _bad(f"{path!r} has no directory {parent!r} in the bundle")
    return tree


def _check_entry(entry: Entry, sent: set[str], writer: PackWriter) -> None:
    parts = entry.path.split("/")
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise _bad(f"{entry.path!r} is not a plain relative path")
    if entry.kind not in _SENT_KINDS:
        raise _bad(f"{entry.path!r} is of kind {entry.kind!r}")
    if not 0 <= entry.mode <= 0o7777:
        raise _bad(f"{entry.path!r} has the mode {entry.mode:o}")
    if entry.kind == FILE and (entry.digest is None or (entry.digest not in sent and not writer.has(entry.digest))):
        raise _bad(f"the content of {entry.path!r} is neither in the bundle nor stored")
    if entry.kind == SYMLINK and (not entry.target or "\0" in entry.target):
        raise _bad(f"symlink {entry.path!r} has no usable target")


class _Stream:
    """Exact reads over an upload's chunks, whatever sizes they come in (no chunk is copied whole twice)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._held = memoryview(b"")

    def take(self, size: int) -> Iterator[bytes]:
        """Exactly `size` bytes, in pieces.  Raises: OpError: the stream ends first."""
        left = size
        while left:
            if not self._held and not self._fill():
                raise _bad(f"it ends {left} bytes early")
            piece, self._held = self._held[:left], self._held[left:]
            left -= len(piece)
            yield bytes(piece)

    def exact(self, size: int) -> bytes:
        return b"".join(self.take(size))

    def at_end(self) -> bool:
        return not self._held and not self._fill()

    def _fill(self) -> bool:
        """Hold the next non-empty chunk; False at the end of the stream."""
        for chunk in self._chunks:
            if chunk:
                self._held = memoryview(chunk)
                return True
        return False


def _bad(why: str) -> OpError:
    return OpError(
        Code.INVALID_ARGUMENT, f"not a usable snapshot bundle: {why}", hint="send it again from its workspace"
    )
