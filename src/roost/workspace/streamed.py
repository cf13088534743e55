"""A result that arrives item by item: what the SDK hands out for listings and diffs of any size.

`Streamed` runs one record-streaming agent call (`Engine.records`) when it
is first iterated, turns each record into a model value as it arrives, and
keeps the call's summary (the RESPONSE's small result, e.g. counts and
`next_cursor`) once the last item is read. Stopping early (`close()`, the
end of a `with` block, or dropping the iterator) cancels the call, so the
agent stops walking too.

Imports: workspace.engine, protocol's op messages, rpc.client, protocol.redaction, workspace.redacted_streams, store records and the standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, Generic, TypeVar, cast

from roost.protocol.ops.message import Message
from roost.protocol.redaction import Redactor
from roost.rpc.client import received
from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine
from roost.workspace.redacted_streams import redacted_parts

T = TypeVar("T")
R = TypeVar("R", bound=Message)

__all__ = ["Streamed"]


class Streamed(Generic[T]):
    """Items of a streamed result, in order, each as it arrives. Iterate it once.

    `summary` is the call's result in its JSON form (names in their text
    form), available once every item has been read.
    """

    def __init__(
        self,
        engine: Engine,
        record: WorkspaceRecord,
        args: Message,
        record_type: type[R],
        item: Callable[[R], T],
        redactor: Redactor | None = None,
    ) -> None:
        """`args`: the op's argument message; each record is read as `record_type`, then made an item.

        `redactor`: the items that are text (patch pieces) pass through it, as one text per run of them.
        """
        # The summary lands in a list the generator shares, not on `self`: no cycle, so a
        # Streamed dropped part-way is closed (and its call cancelled) as soon as it goes.
        self._summaries: list[dict[str, Any]] = []
        self._items = _items(engine, record, args, record_type, item, self._summaries)
        if redactor is not None:
            # Only `str` items change, and into `str`: the items are still of type T.
            self._items = cast(Generator[T, None, None], redacted_parts(redactor, self._items))

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        """Raises: RoostError: the call's error, met when the call starts or mid-way."""
        return next(self._items)

    @property
    def summary(self) -> dict[str, Any]:
        """The call's result (counts, `next_cursor`, ...).

        Raises:
            RuntimeError: the items have not all been read.
        """
        if not self._summaries:
            raise RuntimeError("the stream has not been read to its end")
        return self._summaries[0]

    def summary_as(self, result: type[R]) -> R:
        """`summary` as the op's result message.

        Raises:
            RuntimeError: the items have not all been read.  ProtocolError: the summary is not one.
        """
        return received(result, self.summary)

    def close(self) -> None:
        """Stop early: the agent's call is cancelled."""
        self._items.close()

    def __enter__(self) -> Streamed[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _items(
    engine: Engine,
    record: WorkspaceRecord,
    args: Message,
    record_type: type[R],
    item: Callable[[R], T],
    summaries: list[dict[str, Any]],
) -> Generator[T, None, None]:
    with engine.records(record, args) as stream:
        for found in stream.records_as(record_type):
            yield item(found)
        summaries.append(stream.result)
