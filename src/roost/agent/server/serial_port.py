"""Serving the agent over a virtio-serial port, one host session after another.

A virtio-serial port has no accept(): the host end (QEMU's chardev socket,
say) connects and disconnects while the guest keeps the port open. With no
host connected, reads return 0 at once and poll() reports POLLHUP; bytes
the host sends while the guest has the port *closed* are dropped. So the
port is opened once (or handed over already open by roost's init, as
`fd:N`) and held for the agent's whole life, and every host connection
gets a fresh protocol session on it.

`serial:PATH` or `serial:fd:N` as the agent's `--listen` address.

Imports: the op table, this package and the standard library only.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from typing import Any

from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection
from roost.agent.server.fd_stream import FdStream, ListenError

# How long one poll for "is a host there?" blocks, and the pause between
# looks while none is (the port reports HUP at once then, so poll cannot wait).
_POLL_MS = 500
_NO_HOST_PAUSE = 0.05


class PortStream(FdStream):
    """The port as one session's stream: ending the session leaves the port open."""

    def close(self) -> None:
        pass


def open_port(target: str) -> int:
    """The port's fd: `fd:N` as inherited, else PATH opened read-write.

    Raises:
        OSError: the port cannot be opened (EBUSY if another process holds it).
    """
    if target.startswith("fd:"):
        return int(target[3:])
    return os.open(target, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)


def wait_for_host(fd: int, stop: threading.Event, poll_ms: int = _POLL_MS) -> bool:
    """Block until a host is connected to the port (True) or `stop` is set (False).

    A connected host that has sent nothing yet shows as a poll that times out without HUP.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not stop.is_set():
        events = poller.poll(poll_ms)
        if not events or not events[0][1] & select.POLLHUP:
            return True
        stop.wait(_NO_HOST_PAUSE)
    return False


def serve_serial(target: str, ops: OpTable, info: dict[str, Any], on_ready: Callable[[], None] | None = None) -> None:
    """Serve host sessions on the port `target` until `ops.agent.shutdown` is set.

    Raises:
        ListenError: the port cannot be opened.
    """
    try:
        fd = open_port(target)
    except (OSError, ValueError) as exc:
        raise ListenError(f"cannot open the serial port {target!r}: {exc}") from None
    stream = PortStream(fd)
    stop = ops.agent.shutdown
    wake = threading.Event()

    def watch_shutdown() -> None:
        stop.wait()
        wake.set()

    threading.Thread(target=watch_shutdown, name="shutdown-watch", daemon=True).start()
    if on_ready:
        on_ready()
    while not stop.is_set():
        if not wait_for_host(fd, stop):
            break
        wake.clear()

        def session() -> None:
            try:
                Connection(stream, ops, info).serve()
            finally:
                wake.set()

        # A session blocked reading the port cannot be interrupted, so it runs
        # on its own thread and a shutdown simply stops waiting for it.
        threading.Thread(target=session, name="serial-session", daemon=True).start()
        wake.wait()
