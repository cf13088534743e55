"""A byte stream over one file descriptor, and the error for a place the agent cannot listen on.

Shared by listen.py (fd:N) and serial_port.py (a virtio-serial port), which
must not import each other.

Imports: the standard library only.
"""

from __future__ import annotations

import os


class ListenError(Exception):
    pass


class FdStream:
    """A byte stream over one file descriptor (serial port, socketpair end)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def recv_into(self, buffer: memoryview) -> int:
        data = os.read(self._fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
