"""Results of any size: lists travel as records in DATA bodies, in a fixed order, resumable by cursor.

Every op whose result grows with the workspace (listings, diffs, snapshot,
shell and service lists, the files a patch touched) sends it the same way:

* Each item is one *record*, a JSON object on a line of its own (UTF-8,
  ending in `\\n`), sent on the `records` channel. A DATA body holds whole
  lines only, about `RECORD_FRAME_BYTES` of them, so a receiver decodes each
  frame as it comes and never holds more than one.
* The RESPONSE header carries only a summary: `count` (records sent) and
  `next_cursor`, plus the op's own totals. Nothing in it grows with the result.
* Records come in a fixed order by a *key* (paths: tree order, a parent
  before its children and siblings by the bytes of their names). A request
  may carry `cursor` (resume after the record that cursor names) and
  `limit` (at most that many records); when the limit stops the list early,
  `next_cursor` names the last record sent, else it is null.

A cursor is opaque to callers: it encodes the key of the last record sent.

Standard library only, no I/O: the guest agent imports it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "MAX_CURSOR_CHARS",
    "RECORD_FRAME_BYTES",
    "CursorError",
    "Key",
    "RecordWriter",
    "decode_cursor",
    "decode_records",
    "encode_cursor",
    "encode_record",
    "path_key",
]

RECORD_FRAME_BYTES = 64 * 1024
MAX_CURSOR_CHARS = 16 * 1024
_CURSOR_PREFIX = "c1."

Key = tuple[bytes, ...]


class CursorError(ValueError):
    """A cursor that no listing handed out."""


def path_key(rel: str) -> Key:
    """The order key of a relative path: its components as bytes (tree order when compared)."""
    return tuple(os.fsencode(part) for part in rel.split("/")) if rel else ()


def encode_cursor(key: Sequence[bytes]) -> str:
    """The cursor that resumes a list after the record with `key`."""
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(b"\0".join(key)).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """The key a cursor names.

    Raises:
        CursorError: the text is not a cursor.
    """
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX) or len(cursor) > MAX_CURSOR_CHARS:
        raise CursorError("not a cursor this listing handed out")
    encoded = cursor[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("not a cursor this listing handed out") from None
    if not raw:
        raise CursorError("the cursor is empty")
    return tuple(raw.split(b"\0"))


def encode_record(record: dict[str, Any]) -> bytes:
    """One record as its line on the wire."""
    try:
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate in some free text (names never: they travel in their text form).
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def decode_records(body: bytes) -> list[dict[str, Any]]:
    """The records of one DATA body.

    Raises:
        ValueError: a line that is not a JSON object.
    """
    records = []
    for line in body.split(b"\n"):
        if not line:
            continue
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("a record is not a JSON object")
        records.append(record)
    return records


class RecordWriter:
    """Packs records into DATA bodies of whole lines, about `frame_bytes` each, sent through `send(channel, body)`."""

    def __init__(self, send: Callable[[str, bytes], None], channel: str, frame_bytes: int = RECORD_FRAME_BYTES) -> None:
        self._send = send
        self._channel = channel
        self._frame_bytes = frame_bytes
        self._lines: list[bytes] = []
        self._size = 0

    def add(self, record: dict[str, Any]) -> None:
        line = encode_record(record)
        if self._lines and self._size + len(line) > self._frame_bytes:
            self.flush()
        self._lines.append(line)
        self._size += len(line)

    def flush(self) -> None:
        if self._lines:
            body = b"".join(self._lines)
            self._lines.clear()
            self._size = 0
            self._send(self._channel, body)
