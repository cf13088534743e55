"""Live data for the dashboard: the SDK's blocking streams and polls, made async.

`pumped` runs one of the SDK's callback streams (a shell's attach, a service's
log follow) on a worker thread and hands its chunks to the event loop; leaving
the iterator stops the thread. `polled_events` polls an SDK call and sends its
result as a server-sent event whenever it differs from the last one;
`SharedPoll` does the same once for every page that follows one thing.

Imports: errors, starlette's threadpool and the standard library.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from roost.errors import RoostError

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


def sse(event: str, data: Any) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error_event(exc: RoostError) -> bytes:
    """The event that ends a stream whose SDK call failed (the workspace went away, say)."""
    return sse("failed", {"code": exc.code, "message": exc.message, "hint": exc.hint})


async def polled_events(event: str, poll: Callable[[], Any], *, every: float = POLL_SECONDS) -> AsyncIterator[bytes]:
    """SSE `event`s: `poll()`'s result now, then again whenever it changed (polled on a worker thread
    every `every` seconds), a keepalive comment when nothing was sent for a while, and a `failed`
    event (which ends the stream) once `poll` raises a RoostError.
    """
    last: object = _END
    quiet_since = time.monotonic()
    while True:
        try:
            current = await run_in_threadpool(poll)
        except RoostError as exc:
            yield error_event(exc)
            return
        if current != last:
            last = current
            quiet_since = time.monotonic()
            yield sse(event, current)
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield b": keepalive\n\n"
        await asyncio.sleep(every)


class SharedPoll:
    """One poll of an SDK call serving every subscriber: polled every `every` seconds on a worker
    thread while anyone listens, each new subscriber sent the latest result at once (so a page
    that opens gets its first paint without waiting for a poll of its own).
    """

    def __init__(self, poll: Callable[[], Any], *, every: float = POLL_SECONDS) -> None:
        self._poll = poll
        self._every = every
        self._latest: Any = _END
        self._version = 0
        self._listeners = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def events(self, event: str) -> AsyncIterator[bytes]:
        """SSE `event`s of the latest result and each change, keepalives, a `failed` event at a RoostError."""
        self._listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        seen = 0
        try:
            while True:
                news = await self._after(seen)
                if news is None:
                    yield b": keepalive\n\n"
                    continue
                seen, latest = news
                if isinstance(latest, RoostError):
                    yield error_event(latest)
                    return
                yield sse(event, latest)
        finally:
            self._listeners -= 1

    async def _after(self, seen: int) -> tuple[int, Any] | None:
        """(version, result) once the version is past `seen`; None when nothing came for a while."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._version != seen), KEEPALIVE_SECONDS)
            except TimeoutError:
                return None
            return self._version, self._latest

    async def _run(self) -> None:
        while self._listeners > 0:
            try:
                current: Any = await run_in_threadpool(self._poll)
            except RoostError as exc:
                current = exc
            if self._version == 0 or current != self._latest:
                async with self._changed:
                    self._latest, self._version = current, self._version + 1
                    self._changed.notify_all()
            await asyncio.sleep(self._every)
