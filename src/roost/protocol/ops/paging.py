"""The arguments and the summary every record-streamed op shares (see `roost.protocol.records`).

A listing's arguments extend `PageArgs` (`cursor`: resume after the record it
names; `limit`: at most that many records); its RESPONSE extends
`PageSummary` (`count` records sent, `next_cursor` to resume from, null when
the list is complete).

Imports: this package's `message`, protocol's `records`; standard library only.
"""

from __future__ import annotations

from roost.protocol.ops.message import Message, invalid, message, wire
from roost.protocol.records import MAX_CURSOR_CHARS, CursorError, decode_cursor

__all__ = ["CURSOR_HINT", "PageArgs", "PageSummary"]

CURSOR_HINT = "pass a next_cursor exactly as it was given, or none to start at the beginning"


@message
class PageArgs(Message):
    """Where a listing starts (after `cursor`) and how many records it may send (`limit`)."""

    cursor: str | None = wire(None, hint=CURSOR_HINT)
    limit: int | None = wire(None, minimum=1)

    def check(self) -> None:
        if self.cursor is not None:
            if len(self.cursor) > MAX_CURSOR_CHARS:
                raise invalid("cursor: not a cursor this listing handed out", hint=CURSOR_HINT)
            try:
                decode_cursor(self.cursor)
            except CursorError as exc:
                raise invalid(f"cursor: {exc}", hint=CURSOR_HINT) from None


@message
class PageSummary(Message):
    """What the RESPONSE of a listing says: how many records came, and where the next page starts."""

    count: int = wire(minimum=0)
    next_cursor: str | None = wire(None)
