"""Live data for the dashboard: the SDK's blocking streams and polls, made async.

`pumped` runs one of the SDK's callback streams (a shell's attach, a service's
log follow) on a worker thread and hands its chunks to the event loop; leaving
the iterator stops the thread. `changes` polls an SDK call and yields its result
only when it differs from the last one. `server_sent` frames values as SSE.

Imports: anyio, starlette's threadpool and the standard library.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

# How often a watched value is polled: the "live" of the live list.
POLL_SECONDS = 1.0
# A blank comment line this often keeps proxies and the browser from dropping a quiet stream.
KEEPALIVE_SECONDS = 15.0

StreamStarter = Callable[[Callable[[bytes], None], threading.Event], object]
_END = object()


async def pumped(start: StreamStarter, *, on_end: Callable[[], object] | None = None) -> AsyncIterator[bytes]:
    """The chunks `start(on_chunk, stop)` produces on a worker thread, until it returns or the caller leaves.

    An error the stream raises is raised here, after the chunks before it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(chunk: bytes) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, chunk)

    def run() -> None:
        try:
            start(hand_over, stop)
            outcome: object = _END
        except BaseException as exc:  # handed to the event loop, raised there
            outcome = exc
        try:
            loop.call_soon_threadsafe(queue.put_nowait, outcome)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            pass

    worker = threading.Thread(target=run, name="ui-stream", daemon=True)
    worker.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        if on_end is not None:
            on_end()


async def changes(poll: Callable[[], Any], *, every: float = POLL_SECONDS) -> AsyncIterator[Any]:
    """`poll()` (run on a worker thread) now, then every `every` seconds whenever its result changed."""
    last: object = _END
    while True:
        current = await run_in_threadpool(poll)
        if current != last:
            last = current
            yield current
        await asyncio.sleep(every)


def sse(event: str, data: Any) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def server_sent(event: str, values: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    """`values` as SSE `event`s, with a keepalive comment whenever none came for a while."""
    pending: asyncio.Task[Any] | None = None
    iterator = values.__aiter__()
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield b": keepalive\n\n"
                continue
            try:
                value = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield sse(event, value)
    finally:
        if pending is not None:
            pending.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
