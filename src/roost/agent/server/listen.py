"""Where the agent accepts connections: a Unix socket (bound here, or bound by the host and
inherited as a descriptor), a vsock port, an fd, or a virtio-serial port.

Never a network interface: there is no TCP listener, on purpose.

Imports: protocol, the op table, this package and the standard library only.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection
from roost.agent.server.fd_stream import FdStream, ListenError
from roost.protocol.addresses import bind_private


def _bind(spec: str) -> socket.socket:
    kind, _, where = spec.partition(":")
    if kind == "socket-fd":
        # A socket the host bound and listened on where the workspace cannot reach
        # it, handed over as an inherited descriptor.
        try:
            sock = socket.socket(fileno=int(where))
        except (ValueError, OSError) as exc:
            raise ListenError(f"socket-fd:{where} is not an open socket: {exc}") from None
        sock.set_inheritable(False)
        return sock
    if kind == "unix":
        if not where:
            raise ListenError("unix: needs a path")
        try:
            os.unlink(where)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bind_private(sock, where)
        return sock
    if kind == "vsock":
        if not hasattr(socket, "AF_VSOCK"):
            raise ListenError("this Python has no AF_VSOCK support")
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.bind((socket.VMADDR_CID_ANY, int(where)))
        return sock
    raise ListenError(f"unknown listen address {spec!r}; use unix:PATH, socket-fd:N, vsock:PORT, fd:N or serial:PATH")


def serve(spec: str, ops: OpTable, info: dict[str, Any], on_ready: Callable[[], None] | None = None) -> None:
    """Accept and serve connections until `ops.agent.shutdown` is set."""
    if spec.startswith("fd:"):
        stream = FdStream(int(spec[3:]))
        if on_ready:
            on_ready()
        Connection(stream, ops, info).serve()
        return
    if spec.startswith("serial:"):
        from roost.agent.server.serial_port import serve_serial  # loaded only for a serial port

        serve_serial(spec[len("serial:") :], ops, info, on_ready)
        return
    listener = _bind(spec)
    listener.listen(64)
    stop = ops.agent.shutdown

    def watch_shutdown() -> None:
        stop.wait()
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass

    threading.Thread(target=watch_shutdown, name="shutdown-watch", daemon=True).start()
    if on_ready:
        on_ready()
    try:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if stop.is_set():
                    break
                raise
            threading.Thread(target=Connection(conn, ops, info).serve, name="connection", daemon=True).start()
    finally:
        listener.close()
