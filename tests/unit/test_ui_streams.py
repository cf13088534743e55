"""The dashboard's live streams: one shared poll for every page, changes only, a failure ends the stream."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

from roost.errors import NotFound
from roost.ui.streams import SharedPoll, polled_events, pumped


def _data(event: bytes) -> object:
    lines = event.decode().splitlines()
    assert lines[0].startswith("event: ")
    return json.loads(lines[1].removeprefix("data: "))


async def _take(stream: AsyncIterator[bytes], count: int) -> list[bytes]:
    taken = []
    async for event in stream:
        taken.append(event)
        if len(taken) == count:
            break
    return taken


def test_a_shared_poll_serves_every_listener_with_one_poll_per_tick() -> None:
    calls: list[int] = []

    def poll() -> int:
        calls.append(1)
        return len(calls) // 3  # changes every third poll

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        shared = SharedPoll(poll, every=0.01)
        first, second = shared.events("n"), shared.events("n")
        return await asyncio.wait_for(asyncio.gather(_take(first, 3), _take(second, 3)), 10)

    one, two = asyncio.run(scenario())
    assert [_data(e) for e in one] == [_data(e) for e in two] == [0, 1, 2]
    assert len(calls) <= 10  # one poll per tick for both, not one each


def test_a_polled_stream_sends_only_changes_and_ends_with_failed_at_a_roost_error() -> None:
    values = iter([1, 1, 1, 2, 2])

    def poll() -> int:
        try:
            return next(values)
        except StopIteration:
            raise NotFound("the workspace went away", code="workspace_not_found") from None

    async def scenario() -> list[bytes]:
        return [event async for event in polled_events("v", poll, every=0.001)]

    events = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [_data(e) for e in events[:2]] == [1, 2]
    assert events[2].startswith(b"event: failed\n") and _data(events[2])["code"] == "workspace_not_found"  # type: ignore[index]
    assert len(events) == 3


def test_pumped_hands_over_chunks_and_stops_the_stream_when_the_reader_leaves() -> None:
    stopped = threading.Event()

    def stream(on_chunk: object, stop: threading.Event) -> None:
        assert callable(on_chunk)
        on_chunk(b"one")
        on_chunk(b"two")
        stop.wait(10)
        stopped.set()

    async def scenario() -> list[bytes]:
        chunks = pumped(stream)
        taken = await _take(chunks, 2)
        await chunks.aclose()  # type: ignore[attr-defined]
        return taken

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == [b"one", b"two"]
    assert stopped.wait(5)
