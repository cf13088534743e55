"""Redaction of what streams out of a workspace, as it streams: a call's channels, and a diff's patch text.

`ChannelRedactor` holds back what could be the start of a secret between
chunks (see `roost.protocol.redaction.StreamRedactor`) and lets it out when
the stream ends. For a live view that may not end for long (an attached
terminal, a followed log) it can also let it out after `IDLE_FLUSH_S`
without new data, so a prompt or a last line never waits for more output;
a value written in pieces slower than that can then escape. An exec's
output is held back until it ends.

Imports: protocol.redaction and the standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

from roost.protocol.redaction import Redactor, StreamRedactor

__all__ = ["IDLE_FLUSH_S", "ChannelRedactor", "redacted_parts"]

# For live views, as the agent does for service logs: a value written in pieces slower than this can escape.
IDLE_FLUSH_S = 0.1
T = TypeVar("T")


class ChannelRedactor:
    """Redacts the data of several channels on its way to `forward(channel, data)`; `finish` sends the rest.

    Thread-safe: data and the idle flush reach `forward` one at a time, in order.
    """

    def __init__(
        self, redactor: Redactor, forward: Callable[[str, bytes], None], idle_flush: float | None = None
    ) -> None:
        self._redactor = redactor
        self._forward = forward
        self._idle_flush = idle_flush
        self._streams: dict[str, StreamRedactor[bytes]] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def feed(self, channel: str, data: bytes) -> None:
        with self._lock:
            stream = self._streams.get(channel)
            if stream is None:
                stream = self._streams[channel] = self._redactor.stream()
            passed = stream.feed(data)
            if passed:
                self._forward(channel, passed)
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._idle_flush is not None and any(stream.holding for stream in self._streams.values()):
            self._timer = threading.Timer(self._idle_flush, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._flush_held()

    def _flush_held(self) -> None:
        for channel, stream in self._streams.items():
            rest = stream.finish()
            if rest:
                self._forward(channel, rest)

    def finish(self) -> None:
        """The stream has ended: send what is held back; the idle flush is off."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._flush_held()


def redacted_parts(redactor: Redactor, parts: Iterator[T]) -> Generator[T | str, None, None]:
    """`parts` with their `str` pieces redacted as one text per run of pieces (a value split between
    pieces is caught); anything else passes as it is, and ends the run before it."""
    stream = redactor.text_stream()
    try:
        for part in parts:
            if isinstance(part, str):
                passed = stream.feed(part)
                if passed:
                    yield passed
                continue
            rest = stream.finish()
            if rest:
                yield rest
            yield part
        rest = stream.finish()
        if rest:
            yield rest
    finally:
        close = getattr(parts, "close", None)
        if close is not None:
            close()
