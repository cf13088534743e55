"""`roost ui`: serve the dashboard on 127.0.0.1 until interrupted.

Binds the socket itself (port 0 picks a free one) so the URL it prints names the
real port, and the token in that URL is made fresh for this start and kept
nowhere but in this process.

Imports: client, errors, the dashboard's app and guard, uvicorn and the standard library.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import webbrowser
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from roost.client import Roost
from roost.errors import InvalidArgument, PortInUse
from roost.ui.app import dashboard
from roost.ui.guard import Door, new_token

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 2


@dataclass(frozen=True)
class UiOptions:
    port: int = 0
    open_browser: bool = True
    json: bool = False
    home: Path | None = None
    backend: str | None = None


def bind(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:`port` (0: any free port).

    Raises:
        InvalidArgument: a port outside 0-65535.
        PortInUse: port_in_use.
    """
    if not 0 <= port <= 65535:
        raise InvalidArgument(f"port {port} is out of range", hint="give a port from 1 to 65535, or 0 for any")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((LOOPBACK, port))
    except OSError as exc:
        listener.close()
        raise PortInUse(
            f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}", hint="pick another port, or 0 for any free one"
        ) from None
    listener.listen(128)
    return listener


def serve(options: UiOptions) -> None:
    """Serve the dashboard until Ctrl-C; print its URL (once, with the token) first.

    Raises:
        InvalidArgument, PortInUse: before anything is served.
    """
    listener = bind(options.port)
    port = listener.getsockname()[1]
    door = Door(port=port, token=new_token())
    url = f"http://{LOOPBACK}:{port}/?token={door.token}"
    with Roost(home=options.home, backend=options.backend) as roost:
        app = dashboard(roost, door)
        if options.json:
            print(json.dumps({"url": url, "host": LOOPBACK, "port": port}), flush=True)
        else:
            print(f"roost ui: {url}\n(open it in a browser on this machine; Ctrl-C stops the dashboard)", flush=True)
        # The first list connects to every agent (seconds with many workspaces): do it before anyone looks.
        threading.Thread(target=roost.list_workspaces, name="ui-warm-up", daemon=True).start()
        if options.open_browser:
            webbrowser.open(url)
        # Live streams never end by themselves: at Ctrl-C or TERM give them a moment, then close them.
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            ws="websockets-sansio",
            lifespan="off",
            timeout_graceful_shutdown=STOP_GRACE_SECONDS,
        )
        uvicorn.Server(config).run(sockets=[listener])
    sys.stdout.flush()
