"""An op's growing result, sent as a record stream: after the request's cursor, up to its limit.

A handler walks its items in key order and offers each to `RecordPage.add`;
the page skips what the cursor says was sent before, sends the rest as
records (`roost.protocol.records`), and says stop once `limit` records are
out. `summary()` is what goes into the RESPONSE: how many were sent and the
cursor to resume from (null when the list is complete).

Imports: protocol, the agent's own context and the standard library only.
"""

from __future__ import annotations

from typing import Any

from roost.agent.context import RequestContext
from roost.protocol import Code, OpError
from roost.protocol.messages import CH_RECORDS
from roost.protocol.records import CursorError, Key, RecordWriter, decode_cursor, encode_cursor


class RecordPage:
    """The records one call sends, in ascending key order."""

    def __init__(self, ctx: RequestContext) -> None:
        cursor = ctx.arg_opt_str("cursor")
        try:
            self.after: Key | None = decode_cursor(cursor) if cursor is not None else None
        except CursorError as exc:
            raise OpError(Code.INVALID_ARGUMENT, f"cursor: {exc}", hint="pass a next_cursor exactly as given") from None
        self.limit = ctx.arg_opt_int("limit", minimum=1)
        self._ctx = ctx
        self._writer = RecordWriter(ctx.send, CH_RECORDS)
        self._last: Key | None = None
        self.count = 0
        self.next_cursor: str | None = None

    def seen(self, key: Key) -> bool:
        """Whether the cursor says the record with `key` was sent by an earlier call."""
        return self.after is not None and key <= self.after

    def has_room(self) -> bool:
        """Whether another record fits in this page (`limit`)."""
        return self.limit is None or self.count < self.limit

    def add(self, key: Key, record: dict[str, Any]) -> bool:
        """Send `record` unless the page is full; False means stop (`next_cursor` is set).

        Raises:
            OpError: cancelled, when the call was.
        """
        if not self.has_room():
            self.stop_before()
            return False
        if self._ctx.cancelled.is_set():
            raise OpError(Code.CANCELLED, f"{self._ctx.op} cancelled")
        self._writer.add(record)
        self._last = key
        self.count += 1
        return True

    def stop_before(self) -> None:
        """End the page before the item at hand, which then comes first on the next page."""
        assert self._last is not None, "a page holds at least one record"
        self.next_cursor = encode_cursor(self._last)

    def attach(self, record: dict[str, Any]) -> None:
        """Send a record that belongs to the last one added (a piece of its patch, say); not counted."""
        self._writer.add(record)

    def summary(self) -> dict[str, Any]:
        """Send what is buffered; the RESPONSE fields: `count` and `next_cursor`."""
        self._writer.flush()
        return {"count": self.count, "next_cursor": self.next_cursor}
