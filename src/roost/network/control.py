"""The gateway's control socket: one JSON request line, one JSON answer line, over NET_DIR/control.sock.

Requests: `{"op": "status"}`, `{"op": "set", "policy": {...}, "ports":
[...]}` (a live change) and `{"op": "stop"}`. An answer is `{"ok": true,
...}` or `{"ok": false, "code": ..., "message": ..., "hint": ...}`, the
error a RoostError carried, raised again on the caller's side. The socket
is 0600 in a 0700 directory: only roost's user reaches it.

Imports: roost.errors, roost.network.accepting, roost.protocol.addresses (a standard-library-only leaf)
and the standard library.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from roost.errors import NetworkError, PortInUse, RoostError
from roost.network.accepting import accept_each
from roost.protocol.addresses import bind_private, unix_sockaddr

__all__ = ["CONTROL_NAME", "ask", "serve_control"]

CONTROL_NAME = "control.sock"
_MAX_REQUEST = 4 << 20
_ERRORS: dict[str, type[RoostError]] = {"port_in_use": PortInUse}

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def ask(net_dir: Path, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """The gateway's answer to `request`.

    Raises:
        NetworkError: no gateway answers on the socket (gone, or never started).
        RoostError: the gateway refused the request (e.g. PortInUse).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            _at(str(net_dir / CONTROL_NAME), sock.connect)
            sock.sendall(json.dumps(request).encode() + b"\n")
            answer = json.loads(_read_line(sock) or b"{}")
    except (OSError, ValueError) as exc:
        raise NetworkError(
            f"the workspace's network gateway does not answer: {exc}",
            hint="restart the workspace to start its network gateway again",
        ) from None
    if not answer.get("ok"):
        kind = _ERRORS.get(str(answer.get("code")), NetworkError)
        raise kind(str(answer.get("message", "the network gateway failed")), hint=answer.get("hint") or None)
    result: dict[str, Any] = answer
    return result


def _at(path: str, call: Callable[[str], None]) -> None:
    """bind or connect to `path`, also one longer than a unix socket address may be (a deep ROOST_HOME)."""
    address, dir_fd = unix_sockaddr(path)
    try:
        call(address)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def serve_control(net_dir: Path, handle: Handler) -> socket.socket:
    """Listen on NET_DIR/control.sock and answer each request with `handle` on a thread; the listener."""
    path = net_dir / CONTROL_NAME
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    bind_private(listener, str(path))
    listener.listen(16)
    threading.Thread(target=accept_each, args=(listener, partial(_answer, handle=handle)), daemon=True).start()
    return listener


def _answer(conn: socket.socket, *, handle: Handler) -> None:
    with conn:
        try:
            conn.settimeout(10.0)
            request = json.loads(_read_line(conn))
            try:
                answer = {"ok": True, **handle(request)}
            except RoostError as exc:
                answer = {"ok": False, **exc.to_dict()}
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except (OSError, ValueError):
            return


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
