"""Results of any size: lists travel as records in DATA bodies, in a fixed order, resumable by cursor.

Every op whose result grows with the workspace (listings, diffs, snapshot,
shell and service lists, the files a patch touched) sends it the same way:

* Each item is one *record*, a JSON object. Records travel on the
  `records` channel, a batch of them per DATA body: the body is one JSON
  array (UTF-8) of about `RECORD_FRAME_BYTES`, never cut across frames, so
  a receiver decodes each frame as it comes and never holds more than one.
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

from roost.protocol.messages import DATA_CHUNK_BYTES

__all__ = [
    "MAX_CURSOR_CHARS",
    "RECORD_FRAME_BYTES",
    "CursorError",
    "Key",
    "RecordWriter",
    "decode_cursor",
    "decode_records",
    "encode_cursor",
    "encode_records",
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
    return tuple(os.fsencode(rel).split(b"/")) if rel else ()


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


def encode_records(records: list[dict[str, Any]]) -> bytes:
    """One DATA body: `records` as a JSON array (one encoder call for the batch: it is the costly part)."""
    try:
        return json.dumps(records, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate in some free text (names never: they travel in their text form).
        return json.dumps(records, separators=(",", ":")).encode()


def decode_records(body: bytes) -> list[dict[str, Any]]:
    """The records of one DATA body.

    Raises:
        ValueError: the body is not a JSON array of objects.
    """
    records = json.loads(body)
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise ValueError("a records body is not a JSON array of objects")
    return records


def _weight(record: dict[str, Any]) -> int:
    """About how many bytes `record` encodes to: cheap, and never far below for the records we send."""
    return 16 + sum(len(value) + 8 if isinstance(value, str) else 24 for value in record.values())


class RecordWriter:
    """Batches records into DATA bodies of about `frame_bytes`, sent through `send(channel, body)`.

    A body is never larger than `max_body` (the sender's frame size, so no
    body is cut across frames): a batch that encodes larger is sent in halves.
    """

    def __init__(
        self,
        send: Callable[[str, bytes], None],
        channel: str,
        frame_bytes: int = RECORD_FRAME_BYTES,
        max_body: int = DATA_CHUNK_BYTES,
    ) -> None:
        self._send = send
        self._channel = channel
        self._frame_bytes = frame_bytes
        self._max_body = max_body
        self._batch: list[dict[str, Any]] = []
        self._weight = 0

    def add(self, record: dict[str, Any]) -> None:
        self._batch.append(record)
        self._weight += _weight(record)
        if self._weight >= self._frame_bytes:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            batch, self._batch, self._weight = self._batch, [], 0
            self._send_batch(batch)

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        """Raises: ValueError: one record alone encodes larger than a body may be."""
        body = encode_records(batch)
        if len(body) <= self._max_body:
            self._send(self._channel, body)
        elif len(batch) == 1:
            raise ValueError(f"one record encodes to {len(body)} bytes, more than a frame carries ({self._max_body})")
        else:
            half = len(batch) // 2
            self._send_batch(batch[:half])
            self._send_batch(batch[half:])
