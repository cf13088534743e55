"""Moving a TCP connection's bytes between two sockets, fast: splice(2) through a pipe, one thread per direction.

Bytes go socket -> pipe -> socket inside the kernel, never through Python
buffers, so one connection moves several Gbit/s. A direction that reaches
end of file half-closes the other side (so protocols that shut down their
write side work); an error on either side ends both directions.

`read_first_bytes` is how the gateway sees what a client asks for before
a byte of it leaves: it reads until the first TLS record or HTTP header
block is whole (or the client has said nothing for a moment, as
server-speaks-first protocols do). `relay_held` carries a connection whose
client has not said it yet: the server's bytes flow at once, the client's
wait until their beginning has been judged, however long that takes.

Imports: roost.network.sniff and the standard library.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

from roost.network.sniff import SNIFF_LIMIT, is_complete

__all__ = ["read_first_bytes", "relay", "relay_held", "reset"]

_F_SETPIPE_SZ = 1031
_PIPE_BYTES = 1 << 20
_CHUNK = 1 << 20


def read_first_bytes(sock: socket.socket, wait_seconds: float | None, data: bytes = b"") -> bytes:
    """What the client sends first (after `data`, already read), up to SNIFF_LIMIT: until it is complete
    (`sniff.is_complete`), the client ends its side, or `wait_seconds` pass (None: no deadline)."""
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while len(data) < SNIFF_LIMIT and not (data and is_complete(data)):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                break
        chunk = sock.recv(SNIFF_LIMIT - len(data))
        if not chunk:
            break
        data += chunk
    return data


def relay(client: socket.socket, upstream: socket.socket, first: bytes = b"") -> None:
    """Relay both ways until both directions end, then close both sockets; `first` goes upstream first."""
    for sock in (client, upstream):
        sock.setblocking(True)
    try:
        if first:
            upstream.sendall(first)
    except OSError:
        _close(client, upstream)
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    _close(client, upstream)


def relay_held(
    client: socket.socket, upstream: socket.socket, admit: Callable[[bytes], bool], first: bytes = b""
) -> None:
    """Relay a connection whose client's first bytes (`first` and what follows, read with no deadline)
    must be admitted before any of them leaves; the server's bytes flow meanwhile. Refused: the client
    is reset and the server gets nothing of it. Closes both sockets."""
    for sock in (client, upstream):
        sock.setblocking(True)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    try:
        first = read_first_bytes(client, None, first)
    except OSError:
        pass  # the client is gone: what it did send is judged all the same (and logged)
    admitted = admit(first)
    try:
        if admitted and first:
            upstream.sendall(first)
    except OSError:
        admitted = False
    if admitted:
        _pump(client, upstream)
    else:
        _shutdown(upstream, socket.SHUT_RDWR)
    back.join()
    if not admitted:
        reset(client)
    _close(client, upstream)


def reset(client: socket.socket) -> None:
    """Close with a reset, not an orderly close: the client sees its connection refused, not an empty answer."""
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass  # over the user's pipe quota: the default size works, slower
        while True:
            moved = os.splice(source.fileno(), write_end, _CHUNK, flags=os.SPLICE_F_MOVE)
            if moved == 0:
                _shutdown(sink, socket.SHUT_WR)
                return
            while moved:
                # No SPLICE_F_MORE: it corks the socket, delaying the last segment of a request.
                moved -= os.splice(read_end, sink.fileno(), moved, flags=os.SPLICE_F_MOVE)
    except OSError:
        _shutdown(source, socket.SHUT_RDWR)
        _shutdown(sink, socket.SHUT_RDWR)
    finally:
        os.close(read_end)
        os.close(write_end)


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        sock.close()
