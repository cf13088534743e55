"""The host's side of a record stream: records decoded frame by frame as the caller asks for them.

See `roost.protocol.records` for the shape. A `RecordStream` holds at most
the frame it is decoding (the window holds the rest back in the agent), so
a listing of any length costs the same memory as a short one.

Imports: errors, protocol, rpc.client and the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from roost.errors import ProtocolError
from roost.protocol.messages import CH_RECORDS
from roost.protocol.records import decode_records
from roost.rpc.client import CallStream, M, received


class RecordStream:
    """The records of one streamed call, in order; `result` (the RESPONSE's summary) once all are read."""

    def __init__(self, call: CallStream) -> None:
        self._call = call

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Raises: RoostError: the call's error; ProtocolError for data that is not records."""
        for channel, body in self._call:
            if channel != CH_RECORDS:
                self._call.close()
                raise ProtocolError(f"the agent sent {channel!r} data where records belong")
            try:
                records = decode_records(body)
            except ValueError as exc:
                self._call.close()
                raise ProtocolError(f"the agent sent a record that is not a JSON object: {exc}") from None
            yield from records

    def records_as(self, record: type[M]) -> Iterator[M]:
        """The records as their message type (the op table's `records`).

        Raises:
            RoostError: as iterating; ProtocolError for a record that is not one.
        """
        for data in self:
            yield received(record, data)

    @property
    def result(self) -> dict[str, Any]:
        return self._call.result

    def result_as(self, message: type[M]) -> M:
        """The RESPONSE's summary as the op's result message, once all records are read."""
        return received(message, self._call.result)

    def close(self) -> None:
        self._call.close()

    def __enter__(self) -> RecordStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
