"""An op's growing result, sent as a record stream: after the request's cursor, up to its limit.

A handler walks its items in key order and offers each to `RecordPage.add`;
the page skips what the cursor says was sent before, sends the rest as
records (`roost.protocol.records`), and says stop once `limit` records are
out. `summary()` is what goes into the RESPONSE: how many were sent and the
cursor to resume from (null when the list is complete).

Imports: protocol (records and the paging messages), the agent's own context and the standard library only.
"""

from __future__ import annotations

from typing import Any, TypeVar

from roost.agent.context import RequestContext
from roost.protocol import Code, OpError
from roost.protocol.messages import CH_RECORDS
from roost.protocol.ops.message import Message
from roost.protocol.ops.paging import PageArgs, PageSummary
from roost.protocol.records import Key, RecordWriter, decode_cursor, encode_cursor

Summary = TypeVar("Summary", bound=PageSummary)


class RecordPage:
    """The records one call sends, in ascending key order."""

    def __init__(self, ctx: RequestContext, paging: PageArgs) -> None:
        """`paging`: the op's arguments (their cursor was checked when they were made)."""
        self.after: Key | None = decode_cursor(paging.cursor) if paging.cursor is not None else None
        self.limit = paging.limit
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

    def add(self, key: Key, record: Message) -> bool:
        """Send `record` unless the page is full; False means stop (`next_cursor` is set).

        Raises:
            OpError: cancelled, when the call was.
        """
        if not self.has_room():
            self.stop_before()
            return False
        if self._ctx.cancelled.is_set():
            raise OpError(Code.CANCELLED, f"{self._ctx.op} cancelled")
        self._writer.add(record.to_wire())
        self._last = key
        self.count += 1
        return True

    def stop_before(self) -> None:
        """End the page before the item at hand, which then comes first on the next page."""
        assert self._last is not None, "a page holds at least one record"
        self.next_cursor = encode_cursor(self._last)

    def attach(self, record: Message) -> None:
        """Send a record that belongs to the last one added (a piece of its patch, say); not counted."""
        self._writer.add(record.to_wire())

    def summary(self, result: type[Summary], **totals: Any) -> Summary:
        """Send what is buffered; the op's RESPONSE: `count`, `next_cursor` and the op's own `totals`."""
        self._writer.flush()
        return result(count=self.count, next_cursor=self.next_cursor, **totals)
