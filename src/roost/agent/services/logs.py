"""Service log files: bounded, rotated, and read back by tail or from an offset.

Each service writes `stdout.log`, `stderr.log` and `combined.log` (both in
arrival order) under the agent's state dir, outside /workspace, readable
by their owner only (the state dir lives on the host). A file past
`max_bytes` is rotated to `<name>.1` (one generation kept), so a chatty
service costs at most twice the limit per stream.

Standard library only.
"""

from __future__ import annotations

import io
import os
import threading

STREAMS = {"stdout": "stdout.log", "stderr": "stderr.log", "both": "combined.log"}
MAX_LOG_BYTES = 8 * 1024 * 1024


def _open_private(path: str) -> io.BufferedWriter:
    """A log opened for appending, readable by its owner only: the state dir is the host's too."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "ab")


class RotatingLog:
    def __init__(self, path: str, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fh = _open_private(path)  # lives as long as the service
        self._size = self._fh.tell()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._fh.closed:
                return  # output racing a stop: the service is gone, drop it
            if self._size + len(data) > self.max_bytes and self._size:
                self._fh.close()
                os.replace(self.path, self.path + ".1")
                self._fh = _open_private(self.path)
                self._size = 0
            self._fh.write(data)
            self._fh.flush()
            self._size += len(data)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class ServiceLogs:
    """The three logs of one service run directory."""

    def __init__(self, directory: str, max_bytes: int = MAX_LOG_BYTES) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        self._logs = {name: RotatingLog(os.path.join(directory, file), max_bytes) for name, file in STREAMS.items()}

    def write(self, stream: str, data: bytes) -> None:
        self._logs[stream].write(data)
        self._logs["both"].write(data)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()


def _read_all(directory: str, stream: str) -> bytes:
    path = os.path.join(directory, STREAMS[stream])
    data = b""
    for candidate in (path + ".1", path):
        try:
            with open(candidate, "rb") as fh:
                data += fh.read()
        except FileNotFoundError:
            continue
    return data


def tail(directory: str, stream: str, lines: int | None) -> bytes:
    """The last `lines` lines of a stream (all that is kept when None)."""
    data = _read_all(directory, stream)
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def size(directory: str, stream: str) -> int:
    try:
        return os.path.getsize(os.path.join(directory, STREAMS[stream]))
    except FileNotFoundError:
        return 0


def read_from(directory: str, stream: str, offset: int) -> tuple[bytes, int]:
    """Bytes of the current file from `offset` on, and the new offset (rotation restarts at 0)."""
    path = os.path.join(directory, STREAMS[stream])
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, 2)
            if offset > end:
                offset = 0  # rotated meanwhile
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return b"", 0
    return data, offset + len(data)
