"""Serving a listening socket: each accepted connection handled on a thread of its own.

Imports: the standard library only.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

__all__ = ["accept_each"]


def accept_each(listener: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept until the listener is closed (or shut down), handing each connection to `handle` on a daemon thread."""
    while True:
        try:
            conn, _peer = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
