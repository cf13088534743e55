"""A bounded byte ring addressed by absolute offsets, for terminal output.

Every byte ever written has an absolute offset; the ring keeps the newest
`capacity` of them. A reader holds a cursor (an absolute offset) and gets
back what is still kept from there, the next cursor, and how many bytes it
missed because they were dropped before it came back.

Standard library only; no I/O.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RingRead:
    data: bytes
    cursor: int
    next_cursor: int
    dropped: int


class ByteRing:
    """Thread-safe; writers never block, readers may wait for data or for any change."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._buf = bytearray()  # grows with the output up to `capacity`: an idle shell costs little
        self._end = 0  # absolute offset one past the newest byte
        self._last_write = time.monotonic()
        self._closed = False
        self._version = 0
        self._cond = threading.Condition()

    @property
    def end(self) -> int:
        return self._end

    @property
    def start(self) -> int:
        return max(0, self._end - self.capacity)

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._cond:
            if self._end + len(data) <= self.capacity:
                self._buf += data  # still filling, so each offset is its own index
            else:
                self._buf.extend(bytes(self.capacity - len(self._buf)))  # full size from here on
                self._overwrite(data)
            self._end += len(data)
            self._last_write = time.monotonic()
            self._version += 1
            self._cond.notify_all()

    def _overwrite(self, data: bytes) -> None:
        """Store `data` from offset `end` on in the full-size buffer, each byte at offset % capacity."""
        if len(data) >= self.capacity:
            kept = data[-self.capacity :]  # only the newest `capacity` bytes survive
            split = (self._end + len(data)) % self.capacity
            self._buf[split:] = kept[: self.capacity - split]
            self._buf[:split] = kept[self.capacity - split :]
        else:
            pos = self._end % self.capacity
            first = min(len(data), self.capacity - pos)
            self._buf[pos : pos + first] = data[:first]
            if first < len(data):
                self._buf[: len(data) - first] = data[first:]

    def close(self) -> None:
        """No more writes will come (the program exited); wake every waiter."""
        with self._cond:
            self._closed = True
            self._version += 1
            self._cond.notify_all()

    def _slice(self, begin: int, end: int) -> bytes:
        length = end - begin
        if length <= 0:
            return b""
        pos = begin % self.capacity
        first = min(length, self.capacity - pos)
        head = bytes(self._buf[pos : pos + first])
        return head + bytes(self._buf[: length - first]) if first < length else head

    def read(self, cursor: int, max_bytes: int) -> RingRead:
        with self._cond:
            return self._read_locked(cursor, max_bytes)

    def _read_locked(self, cursor: int, max_bytes: int) -> RingRead:
        cursor = max(0, min(cursor, self._end))
        dropped = max(0, self.start - cursor)
        begin = cursor + dropped
        end = min(self._end, begin + max_bytes)
        return RingRead(self._slice(begin, end), begin, end, dropped)

    @property
    def last_write(self) -> float:
        """When (monotonic) the newest byte arrived."""
        return self._last_write

    @property
    def version(self) -> int:
        """Counts every change (a write, the close, a `notify`): a waiter compares it with what it saw."""
        return self._version

    def notify(self) -> None:
        """Wake every waiter: something about this output changed besides its bytes (a prompt mark)."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait_change(self, seen: int, timeout_s: float) -> None:
        """Wait until `version` is no longer `seen`, or `timeout_s` has passed."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen, max(0.0, timeout_s))

    def wait_beyond(self, cursor: int, timeout_s: float) -> bool:
        """Wait until bytes past `cursor` exist (True) or the ring closed / time ran out (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._end > cursor or self._closed, timeout_s) and self._end > cursor

    @property
    def closed(self) -> bool:
        return self._closed
