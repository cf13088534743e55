"""Terminals and service logs: a browser's xterm.js on a workspace shell, a service's log as it grows.

The terminal WebSocket carries the shell's output as binary frames, from byte 0 of what
the shell still holds (so a tab that attaches late sees the screen so far), and takes JSON
text frames: `{"type": "input", "data": "..."}`, `{"type": "resize", "cols": C, "rows": R}`,
`{"type": "signal", "signal": "INT"}`. When the shell ends, a text frame `{"type": "exit", ...}`
says how and the socket closes. The shell is the agent's: the CLI, the SDK and MCP can read
and write it at the same time, and closing the tab leaves it running.

Imports: client, errors, models, the dashboard's answers and streams, and starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from roost.client import Workspace
from roost.errors import InvalidArgument, RoostError
from roost.ui.answers import answer, blocking, json_body, sdk
from roost.ui.streams import error_event, pumped, sse

# The log lines a log view starts with; later ones arrive as they are written.
LOG_TAIL_LINES = 200


def _workspace(connection: Request | WebSocket) -> Workspace:
    return sdk(connection).workspace(connection.path_params["ref"])


async def list_shells(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    return answer(await blocking(workspace.shells.list))


async def open_shell(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    body = await json_body(request)
    cols, rows = _size(body)
    return answer(await blocking(workspace.shells.open, cols=cols, rows=rows), status=201)


async def terminal(socket: WebSocket) -> None:
    """Bridge one browser terminal to one shell until either side goes."""
    try:
        workspace = await blocking(_workspace, socket)
    except RoostError as exc:
        await socket.close(code=4404, reason=exc.code)
        return
    shell_id = socket.path_params["shell_id"]
    await socket.accept()
    output = asyncio.ensure_future(_send_output(socket, workspace, shell_id))
    try:
        while not output.done():
            message = json.loads(await socket.receive_text())
            await _apply(workspace, shell_id, message)
    except WebSocketDisconnect:
        pass
    except (RoostError, ValueError, KeyError, TypeError) as exc:
        await _say(socket, {"type": "error", "message": str(exc)})
    finally:
        output.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await output


async def _send_output(socket: WebSocket, workspace: Workspace, shell_id: str) -> None:
    def attach(on_output: Any, stop: Any) -> object:
        return workspace.shells.attach(shell_id, on_output, stop, cursor=0)

    try:
        async for chunk in pumped(attach):
            await socket.send_bytes(chunk)
        shell = next((s for s in await blocking(workspace.shells.list) if s.id == shell_id), None)
        await _say(socket, {"type": "exit", "state": shell.state if shell else "lost"})
    except RoostError as exc:
        await _say(socket, {"type": "error", "code": exc.code, "message": exc.message})
    await socket.close()


async def _apply(workspace: Workspace, shell_id: str, message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "input":
        await blocking(workspace.shells.write, shell_id, str(message["data"]), newline=False)
    elif kind == "resize":
        cols, rows = _size(message)
        await blocking(workspace.shells.resize, shell_id, cols, rows)
    elif kind == "signal":
        await blocking(workspace.shells.signal, shell_id, str(message.get("signal", "INT")))
    else:
        raise InvalidArgument(f"unknown terminal message {kind!r}", hint="input, resize or signal")


async def _say(socket: WebSocket, message: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):  # the browser may be gone already
        await socket.send_text(json.dumps(message))


def _size(body: dict[str, Any]) -> tuple[int, int]:
    cols, rows = body.get("cols", 120), body.get("rows", 32)
    if not (isinstance(cols, int) and isinstance(rows, int) and 1 <= cols <= 1000 and 1 <= rows <= 1000):
        raise InvalidArgument("cols and rows must be whole numbers from 1 to 1000", hint="e.g. 120 x 32")
    return cols, rows


async def follow_service_log(request: Request) -> StreamingResponse:
    """The service's log (its last lines, then each write) as SSE `log` events of text."""
    workspace = await blocking(_workspace, request)
    name = request.path_params["name"]
    await blocking(workspace.services.status, name)  # an unknown service is a 404

    def follow(on_output: Any, stop: Any) -> object:
        workspace.services.follow(name, on_output, stop, tail=LOG_TAIL_LINES)
        return None

    async def events() -> Any:
        try:
            async for chunk in pumped(follow):
                yield sse("log", chunk.decode("utf-8", "replace"))
        except RoostError as exc:
            yield error_event(exc)
            return
        yield sse("end", name)

    return StreamingResponse(events(), media_type="text/event-stream")


async def stop_service(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    return answer(await blocking(workspace.services.stop, request.path_params["name"]))


PREFIX = "/api/workspaces/{ref}"
ROUTES = [
    Route(f"{PREFIX}/shells", list_shells, methods=["GET"]),
    Route(f"{PREFIX}/shells", open_shell, methods=["POST"]),
    WebSocketRoute(f"{PREFIX}/shells/{{shell_id}}/tty", terminal),
    Route(f"{PREFIX}/services/{{name}}/log", follow_service_log, methods=["GET"]),
    Route(f"{PREFIX}/services/{{name}}/stop", stop_service, methods=["POST"]),
]
