"""One workspace's pages: status followed live, exec history and outputs, files, diff and patch,
snapshots and reset, the network decision log. Read-only except snapshot create and reset.

Imports: client, errors, the dashboard's answers and streams, and starlette.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from roost.client import Roost, Workspace
from roost.errors import InvalidArgument, RoostError
from roost.ui.answers import answer, blocking, json_body, plain, sdk
from roost.ui.streams import polled_events

# A file shown in the browser is cut here; download reads it whole, a window at a time.
VIEW_BYTES = 512 * 1024
DOWNLOAD_WINDOW = 4 * 1024 * 1024
# The diff view's patch is cut here (the patch download is not).
DIFF_VIEW_BYTES = 2 * 1024 * 1024
# The network view shows this many of the newest decisions.
NETWORK_LOG_ENTRIES = 500


def _workspace(request: Request) -> Workspace:
    return sdk(request).workspace(request.path_params["ref"])


def overview(roost: Roost, ref: str) -> dict[str, Any]:
    """Status, services, shells and snapshots of one workspace: what its page follows live."""
    workspace = roost.workspace(ref)
    info = workspace.info()
    running = info.state == "running"
    return {
        "info": info.to_dict(),
        "stats": _stats(workspace) if running else None,
        "services": plain(workspace.services.list()) if running else [],
        "shells": plain(workspace.shells.list()) if running else [],
        "snapshots": plain(workspace.snapshots.list()),
    }


def _stats(workspace: Workspace) -> dict[str, Any] | None:
    """Usage beside the limits; None when the workspace cannot say (it stopped or broke meanwhile)."""
    try:
        return workspace.stats().to_dict()
    except RoostError:
        return None


async def follow_workspace(request: Request) -> StreamingResponse:
    roost, ref = sdk(request), request.path_params["ref"]
    await blocking(roost.workspace, ref)  # an unknown workspace is a 404, not an empty stream
    return StreamingResponse(polled_events("workspace", lambda: overview(roost, ref)), media_type="text/event-stream")


async def history(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    return answer(await blocking(workspace.logs))


async def exec_output(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    exec_id, stream = _int(request.path_params["exec_id"], "exec id"), request.path_params["stream"]
    offset = _int(request.query_params.get("offset", "0"), "offset")
    return answer(await blocking(workspace.exec_output, exec_id, stream, offset=offset))


async def list_files(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    path = request.query_params.get("path", "/workspace")
    return answer(await blocking(workspace.files.list, path))


async def view_file(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    content = await blocking(workspace.files.read, _path(request), max_bytes=VIEW_BYTES)
    return answer({**content.to_dict(), "binary": b"\0" in content.data[:8192]})


async def download_file(request: Request) -> StreamingResponse:
    workspace = await blocking(_workspace, request)
    path = _path(request)
    first = await blocking(workspace.files.read, path, max_bytes=DOWNLOAD_WINDOW)

    async def windows() -> Any:
        content = first
        while True:
            yield content.data
            if content.eof or not content.data:
                return
            offset = content.offset + len(content.data)
            content = await blocking(workspace.files.read, path, offset=offset, max_bytes=DOWNLOAD_WINDOW)

    return StreamingResponse(windows(), media_type="application/octet-stream", headers=_attachment(path))


async def diff(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    against = request.query_params.get("against", "baseline")
    return answer(await blocking(workspace.diff, against=against, max_bytes=DIFF_VIEW_BYTES))


async def patch(request: Request) -> Response:
    workspace = await blocking(_workspace, request)
    against = request.query_params.get("against", "baseline")
    result = await blocking(workspace.diff, against=against, max_bytes=None)
    name = f"{workspace.id[:12]}-{against}.patch"
    return Response(result.patch, media_type="text/x-diff", headers=_attachment(name))


async def create_snapshot(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    name = (await json_body(request)).get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("name the snapshot", hint="e.g. before-refactor")
    return answer(await blocking(workspace.snapshots.create, name), status=201)


async def reset(request: Request) -> JSONResponse:
    workspace = await blocking(_workspace, request)
    snapshot = (await json_body(request)).get("snapshot") or "baseline"
    return answer(await blocking(workspace.reset, snapshot=str(snapshot)))


async def network(request: Request) -> JSONResponse:
    """The network policy and the newest decisions of its log (newest last)."""
    workspace = await blocking(_workspace, request)
    denied = request.query_params.get("denied") == "1"
    shown = await blocking(workspace.network.show)
    decisions = await blocking(workspace.network.log, denied=denied, limit=NETWORK_LOG_ENTRIES)
    return answer({"network": shown.to_dict(), "decisions": plain(decisions)})


def _path(request: Request) -> str:
    path = request.query_params.get("path")
    if not path:
        raise InvalidArgument("which file? give ?path=", hint="e.g. ?path=/workspace/README.md")
    return path


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"{what} {text!r} is not a number", hint="give a whole number") from None


def _attachment(path: str) -> dict[str, str]:
    name = PurePosixPath(path).name or "download"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return {"content-disposition": f'attachment; filename="{safe}"'}


PREFIX = "/api/workspaces/{ref}"
ROUTES = [
    Route(f"{PREFIX}/events", follow_workspace, methods=["GET"]),
    Route(f"{PREFIX}/history", history, methods=["GET"]),
    Route(f"{PREFIX}/history/{{exec_id}}/{{stream}}", exec_output, methods=["GET"]),
    Route(f"{PREFIX}/files", list_files, methods=["GET"]),
    Route(f"{PREFIX}/file", view_file, methods=["GET"]),
    Route(f"{PREFIX}/download", download_file, methods=["GET"]),
    Route(f"{PREFIX}/diff", diff, methods=["GET"]),
    Route(f"{PREFIX}/patch", patch, methods=["GET"]),
    Route(f"{PREFIX}/snapshots", create_snapshot, methods=["POST"]),
    Route(f"{PREFIX}/reset", reset, methods=["POST"]),
    Route(f"{PREFIX}/network", network, methods=["GET"]),
]
