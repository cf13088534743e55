"""The dashboard as an ASGI app: its API routes, its page and assets, behind the door guard.

Imports: client, errors, the dashboard's modules and starlette.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from roost.client import Roost
from roost.errors import RoostError
from roost.ui import terminal_api, workspace_api, workspaces_api
from roost.ui.answers import roost_error
from roost.ui.guard import Door, DoorGuard
from roost.ui.streams import SharedPoll

STATIC = Path(__file__).resolve().parent / "static"


async def page(_request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def dashboard(roost: Roost, door: Door) -> ASGIApp:
    """The whole dashboard for `roost`, answering only requests that get past `door`."""
    routes = [
        Route("/", page, methods=["GET"]),
        *workspaces_api.ROUTES,
        *workspace_api.ROUTES,
        *terminal_api.ROUTES,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={RoostError: roost_error})
    app.state.roost = roost
    app.state.workspace_rows = SharedPoll(lambda: workspaces_api.rows(roost))
    return DoorGuard(app, door)
