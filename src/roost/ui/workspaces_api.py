"""The workspaces list: read it, follow it live, create and delete workspaces, pick an env.

Imports: client, errors, models, the dashboard's answers and streams, and starlette.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from roost.client import Roost
from roost.errors import InvalidArgument
from roost.models import WorkspaceInfo
from roost.ui.answers import answer, blocking, json_body, sdk
from roost.ui.streams import SharedPoll

# What a row of the list shows; the workspace view asks for the rest.
ROW_FIELDS = (
    "id",
    "name",
    "env",
    "backend",
    "isolated",
    "state",
    "health",
    "created_at",
    "labels",
    "ttl_seconds",
    "expires_at",
    "services",
    "shells",
    "exec_count",
    "parent",
)


def row(info: WorkspaceInfo) -> dict[str, Any]:
    data = info.to_dict()
    return {name: data.get(name) for name in ROW_FIELDS}


def rows(roost: Roost) -> list[dict[str, Any]]:
    return [row(info) for info in roost.list_workspaces()]


async def list_workspaces(request: Request) -> JSONResponse:
    return answer(await blocking(rows, sdk(request)))


async def follow_workspaces(request: Request) -> StreamingResponse:
    """The list now, then again each time it changes (polled every second), as SSE `workspaces` events.

    One poll serves every page that follows the list (`app.state.workspace_rows`, made by `app`).
    """
    shared: SharedPoll = request.app.state.workspace_rows
    return StreamingResponse(shared.events("workspaces"), media_type="text/event-stream")


async def create_workspace(request: Request) -> JSONResponse:
    body = await json_body(request)
    env = body.get("env")
    if not isinstance(env, str) or not env:
        raise InvalidArgument("pick an env for the new workspace", hint="e.g. debian:12")
    name = body.get("name") or None
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument("labels must map names to strings", hint='e.g. {"team": "web"}')
    roost = sdk(request)
    workspace = await blocking(roost.create_workspace, env, name=name, labels=labels, ephemeral=False)
    return answer(row(await blocking(workspace.info)), status=201)


async def delete_workspace(request: Request) -> JSONResponse:
    deleted = await blocking(sdk(request).delete_workspace, request.path_params["ref"])
    return answer({"deleted": deleted})


async def list_envs(request: Request) -> JSONResponse:
    envs = await blocking(sdk(request).envs)
    return answer([{"name": env.name, "description": env.description, "cached": env.cached} for env in envs])


ROUTES = [
    Route("/api/workspaces", list_workspaces, methods=["GET"]),
    Route("/api/workspaces", create_workspace, methods=["POST"]),
    Route("/api/events/workspaces", follow_workspaces, methods=["GET"]),
    Route("/api/workspaces/{ref}", delete_workspace, methods=["DELETE"]),
    Route("/api/envs", list_envs, methods=["GET"]),
]
