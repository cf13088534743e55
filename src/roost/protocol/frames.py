"""Frame encoding and decoding for the host <-> agent wire protocol.

A frame is a fixed 12-byte prefix, a JSON header and an optional raw body::

    magic  b"RW"   2 bytes
    version        1 byte   (frame format version, FRAME_VERSION)
    kind           1 byte   (Kind)
    header_len     4 bytes  big-endian, 1..MAX_HEADER_BYTES
    body_len       4 bytes  big-endian, 0..MAX_BODY_BYTES

The header is a UTF-8 JSON object. The body is opaque bytes (file contents,
tar data, process output): never base64.

This module does no I/O of its own; `read_frame` pulls bytes through a
callable the caller supplies, so the same code serves sockets, vsock and a
serial port. Standard library only: the guest agent imports it.
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"RW"
FRAME_VERSION = 1
PREFIX = struct.Struct(">2sBBII")
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

# Bodies up to this size are joined with their prefix into one write.
_JOIN_LIMIT = 64 * 1024


class Kind(enum.IntEnum):
    """What a frame is for. Values are part of the wire format."""

    HELLO = 1
    REQUEST = 2
    DATA = 3
    END = 4
    RESPONSE = 5
    ERROR = 6
    CANCEL = 7
    CREDIT = 8


class FrameError(Exception):
    """The byte stream does not hold a valid frame.

    `code` is one of `protocol_error` (garbage, bad JSON, bad kind) or
    `frame_too_large` (a length field above the hard limits).
    """

    def __init__(self, message: str, code: str = "protocol_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    kind: Kind
    header: dict[str, Any]
    body: bytes = field(default=b"", repr=False)

    @property
    def request_id(self) -> int:
        rid = self.header.get("id", 0)
        return rid if isinstance(rid, int) else 0


def encode_header(kind: Kind, header: dict[str, Any], body_len: int) -> bytes:
    """Return prefix + JSON header for a frame whose body has `body_len` bytes."""
    try:
        raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A file name that is not UTF-8 reaches us surrogate-escaped; JSON's \udcXX escape
        # carries it across losslessly (and the other side's json.loads restores it).
        raw = json.dumps(header, separators=(",", ":")).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise FrameError(f"frame header is {len(raw)} bytes; limit is {MAX_HEADER_BYTES}", "frame_too_large")
    if body_len > MAX_BODY_BYTES:
        raise FrameError(f"frame body is {body_len} bytes; limit is {MAX_BODY_BYTES}", "frame_too_large")
    return PREFIX.pack(MAGIC, FRAME_VERSION, int(kind), len(raw), body_len) + raw


def encode_frame(frame: Frame) -> bytes:
    """Encode a whole frame into one bytes object."""
    return encode_header(frame.kind, frame.header, len(frame.body)) + frame.body


def write_frame(send_all: Callable[[bytes], object], kind: Kind, header: dict[str, Any], body: bytes = b"") -> None:
    """Write one frame through `send_all`, avoiding a copy of large bodies.

    The caller serialises concurrent writers (one lock per connection).
    """
    head = encode_header(kind, header, len(body))
    if len(body) <= _JOIN_LIMIT:
        send_all(head + body)
    else:
        send_all(head)
        send_all(body)


def _parse_prefix(prefix: bytes) -> tuple[Kind, int, int]:
    magic, version, kind, header_len, body_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise FrameError(f"bad frame magic {magic!r}")
    if version != FRAME_VERSION:
        raise FrameError(f"unsupported frame version {version}", "unsupported_version")
    try:
        frame_kind = Kind(kind)
    except ValueError:
        raise FrameError(f"unknown frame kind {kind}") from None
    if header_len == 0:
        raise FrameError("empty frame header")
    if header_len > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {header_len} bytes exceeds {MAX_HEADER_BYTES}", "frame_too_large")
    if body_len > MAX_BODY_BYTES:
        raise FrameError(f"frame body of {body_len} bytes exceeds {MAX_BODY_BYTES}", "frame_too_large")
    return frame_kind, header_len, body_len


def _parse_header(raw: bytes | bytearray | memoryview) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("frame header is not a JSON object")
    return header


def _read_exact(recv_into: Callable[[memoryview], int], size: int, *, at_start: bool) -> bytearray | None:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = recv_into(view[got:])
        if n == 0:
            if at_start and got == 0:
                return None
            raise FrameError(f"stream ended inside a frame ({got} of {size} bytes)")
        got += n
    return buf


def read_frame(recv_into: Callable[[memoryview], int]) -> Frame | None:
    """Read one frame, or return None if the stream ended cleanly between frames.

    `recv_into(view)` must block until at least one byte is available and
    return how many it wrote, or 0 at end of stream.

    Raises:
        FrameError: garbage, a truncated frame, or a length above the limits.
    """
    prefix = _read_exact(recv_into, PREFIX.size, at_start=True)
    if prefix is None:
        return None
    kind, header_len, body_len = _parse_prefix(bytes(prefix))
    raw_header = _read_exact(recv_into, header_len, at_start=False)
    assert raw_header is not None
    header = _parse_header(raw_header)
    body = b""
    if body_len:
        raw_body = _read_exact(recv_into, body_len, at_start=False)
        assert raw_body is not None
        body = bytes(raw_body)
    return Frame(kind, header, body)


class FrameDecoder:
    """Incremental decoder: feed arbitrary chunks, get whole frames back.

    Used where bytes arrive in pieces the caller does not control (tests,
    serial ports). After a FrameError the decoder is poisoned: the stream has
    lost framing and cannot be trusted again.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._broken: FrameError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        if self._broken is not None:
            raise self._broken
        self._buf += data
        frames: list[Frame] = []
        try:
            while len(self._buf) >= PREFIX.size:
                kind, header_len, body_len = _parse_prefix(bytes(self._buf[: PREFIX.size]))
                total = PREFIX.size + header_len + body_len
                if len(self._buf) < total:
                    break
                header = _parse_header(self._buf[PREFIX.size : PREFIX.size + header_len])
                body = bytes(self._buf[PREFIX.size + header_len : total])
                del self._buf[:total]
                frames.append(Frame(kind, header, body))
        except FrameError as exc:
            self._broken = exc
            raise
        return frames

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a whole frame."""
        return len(self._buf)
