"""One shape per object, whichever face and call return it: the CLI's `--json`, the SDK's `to_dict()`, MCP.

Each face drives its own workspace through the same calls (create, status, list, exec, a service's
start/status/list/stop, a shell's open/list/close, a snapshot's create/list, stop, start, status) on the
mock backend, all under one `$ROOST_HOME`. A shape is each key with the JSON type of its value (a
list shows the shape of its first element): the same object has the same shape in every face and
in every call that returns it, in the same state. The one difference allowed is an exec result's
model-facing fields, which only MCP adds (`roost.mcp.output_caps.MODEL_FIELDS`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_helpers import RoostCli

from roost import Roost
from roost.mcp.output_caps import MODEL_FIELDS
from roost.mcp.server import build_server
from roost.serve_options import ServeOptions

pytestmark = pytest.mark.e2e

SERVICE = "sleep 60"
Calls = dict[str, dict[str, Any]]


# Maps whose keys are data (label names, states, secret names), not fields.
DATA_MAPS = {"labels", "services", "shells", "secrets", "probe"}


def kind(value: Any) -> Any:
    """The JSON type of a value; of an object, its shape; of a list, the kind of its first element."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return ["array", kind(value[0]) if value else "empty"]
    return shape(value)


def shape(document: dict[str, Any]) -> dict[str, Any]:
    return {key: "object" if key in DATA_MAPS and value is not None else kind(value) for key, value in document.items()}


def one(listing: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    (found,) = [item for item in listing if item[key] == value]
    return found


def sdk_calls(roost: Roost) -> Calls:
    ws = roost.create_workspace("debian:12")
    calls: Calls = {"create": ws.info().to_dict()}
    calls["status"] = ws.info().to_dict()
    calls["list"] = one([info.to_dict() for info in roost.list_workspaces()], "id", ws.id)
    calls["exec"] = ws.exec("echo hi").to_dict()
    calls["service_start"] = ws.services.start("web", SERVICE).to_dict()
    calls["service_status"] = ws.services.status("web").to_dict()
    calls["service_list"] = one([s.to_dict() for s in ws.services.list()], "name", "web")
    calls["status_busy"] = ws.info().to_dict()
    calls["service_stop"] = ws.services.stop("web").to_dict()
    shell = ws.shells.open()
    calls["shell_open"] = shell.to_dict()
    calls["shell_list"] = one([s.to_dict() for s in ws.shells.list()], "id", shell.id)
    calls["shell_close"] = ws.shells.close(shell.id).to_dict()
    calls["snapshot_create"] = ws.snapshots.create("one").to_dict()
    calls["snapshot_list"] = one([s.to_dict() for s in ws.snapshots.list()], "name", "one")
    calls["stop"] = ws.stop().to_dict()
    calls["status_stopped"] = ws.info().to_dict()
    calls["list_stopped"] = one([info.to_dict() for info in roost.list_workspaces()], "id", ws.id)
    calls["start"] = ws.start().to_dict()
    calls["status_started"] = ws.info().to_dict()
    return calls


def cli_calls(cli: RoostCli) -> Calls:
    ws_id = (created := cli.json("workspace", "create", "debian:12"))["id"]
    calls: Calls = {"create": created}
    calls["status"] = cli.json("workspace", "status", ws_id)
    calls["list"] = one(cli.json("workspace", "list")["workspaces"], "id", ws_id)
    calls["exec"] = cli.json("workspace", "exec", ws_id, "--", "echo", "hi")
    calls["service_start"] = cli.json("workspace", "service", "start", ws_id, "web", "--", *SERVICE.split())
    calls["service_status"] = cli.json("workspace", "service", "status", ws_id, "web")
    calls["service_list"] = one(cli.json("workspace", "service", "list", ws_id)["services"], "name", "web")
    calls["status_busy"] = cli.json("workspace", "status", ws_id)
    calls["service_stop"] = cli.json("workspace", "service", "stop", ws_id, "web")
    calls["shell_open"] = shell = cli.json("workspace", "shell", "open", ws_id)
    calls["shell_list"] = one(cli.json("workspace", "shell", "list", ws_id)["shells"], "id", shell["id"])
    calls["shell_close"] = cli.json("workspace", "shell", "close", ws_id, shell["id"])
    calls["snapshot_create"] = cli.json("workspace", "snapshot", "create", ws_id, "one")
    calls["snapshot_list"] = one(cli.json("workspace", "snapshot", "list", ws_id)["snapshots"], "name", "one")
    calls["stop"] = cli.json("workspace", "stop", ws_id)
    calls["status_stopped"] = cli.json("workspace", "status", ws_id)
    calls["list_stopped"] = one(cli.json("workspace", "list")["workspaces"], "id", ws_id)
    calls["start"] = cli.json("workspace", "start", ws_id)
    calls["status_started"] = cli.json("workspace", "status", ws_id)
    calls["delete"] = cli.json("workspace", "delete", ws_id)
    return calls


def mcp_calls(roost: Roost) -> Calls:
    server = build_server(ServeOptions(profile="full"), roost)

    def tool(tool_name: str, /, **arguments: Any) -> dict[str, Any]:
        result = asyncio.run(server.call_tool(tool_name, arguments))
        assert not getattr(result, "is_error", False), result
        content = getattr(result, "structured_content", None)
        assert isinstance(content, dict), result
        return content

    ws_id = (created := tool("workspace_create"))["id"]
    calls: Calls = {"create": created}
    calls["status"] = tool("workspace_status", workspace=ws_id)
    calls["list"] = one(tool("workspace_list")["workspaces"], "id", ws_id)
    calls["exec"] = tool("workspace_exec", workspace=ws_id, command="echo hi")
    calls["service_start"] = tool("service_start", workspace=ws_id, name="web", command=SERVICE)
    calls["service_status"] = tool("service_status", workspace=ws_id, name="web")
    calls["service_list"] = one(tool("service_list", workspace=ws_id)["services"], "name", "web")
    calls["status_busy"] = tool("workspace_status", workspace=ws_id)
    calls["service_stop"] = tool("service_stop", workspace=ws_id, name="web")
    calls["shell_open"] = shell = tool("shell_open", workspace=ws_id)
    calls["shell_list"] = one(tool("shell_list", workspace=ws_id)["shells"], "id", shell["id"])
    calls["shell_close"] = tool("shell_close", workspace=ws_id, shell=shell["id"])
    calls["snapshot_create"] = tool("snapshot_create", workspace=ws_id, name="one")
    calls["snapshot_list"] = one(tool("snapshot_list", workspace=ws_id)["snapshots"], "name", "one")
    calls["stop"] = tool("workspace_stop", workspace=ws_id)
    calls["status_stopped"] = tool("workspace_status", workspace=ws_id)
    calls["list_stopped"] = one(tool("workspace_list")["workspaces"], "id", ws_id)
    calls["start"] = tool("workspace_start", workspace=ws_id)
    calls["status_started"] = tool("workspace_status", workspace=ws_id)
    calls["delete"] = tool("workspace_delete", workspace=ws_id)
    return calls


# Calls that return the same object in the same state: one shape for all of them, in every face.
SAME_OBJECT = {
    "running workspace": ("create", "status", "list", "status_busy"),
    # Started again: `last_start` says what came back, from the start and every call after it.
    "started workspace": ("start", "status_started"),
    "stopped workspace": ("stop", "status_stopped", "list_stopped"),
    "running service": ("service_start", "service_status", "service_list"),
    "stopped service": ("service_stop",),
    "open shell": ("shell_open", "shell_list"),
    "closed shell": ("shell_close",),
    "snapshot": ("snapshot_create", "snapshot_list"),
    "exec result": ("exec",),
}


@pytest.fixture
def faces(roost: RoostCli) -> Iterator[dict[str, Calls]]:
    with Roost(home=roost.home, backend="mock") as sdk:
        drivers: dict[str, Callable[[], Calls]] = {
            "sdk": lambda: sdk_calls(sdk),
            "cli": lambda: cli_calls(roost),
            "mcp": lambda: mcp_calls(sdk),
        }
        yield {face: drive() for face, drive in drivers.items()}


def test_each_object_has_one_shape_in_every_face_and_every_call(faces: dict[str, Calls]) -> None:
    model_fields = {key: faces["mcp"]["exec"].pop(key) for key in MODEL_FIELDS}
    for what, calls in SAME_OBJECT.items():
        shapes = {(face, call): shape(faces[face][call]) for face in faces for call in calls}
        expected = shapes[("sdk", calls[0])]
        for where, found in shapes.items():
            assert found == expected, (what, where)
    assert [type(model_fields[key]) for key in MODEL_FIELDS] == [bool, int, bool, int]


def test_counts_are_numbers_whenever_the_workspace_runs_and_null_only_when_it_does_not(
    faces: dict[str, Calls],
) -> None:
    for calls in faces.values():
        for call in SAME_OBJECT["running workspace"] + SAME_OBJECT["started workspace"]:
            assert isinstance(calls[call]["services"], dict) and isinstance(calls[call]["shells"], dict), call
        for call in SAME_OBJECT["stopped workspace"]:
            assert (calls[call]["services"], calls[call]["shells"]) == (None, None), call
        assert calls["status_busy"]["services"] == {"ready": 1}


def test_last_start_is_null_until_a_start_and_then_says_what_came_back(faces: dict[str, Calls]) -> None:
    for calls in faces.values():
        assert all(calls[call]["last_start"] is None for call in SAME_OBJECT["running workspace"])
        assert calls["start"]["last_start"] == calls["status_started"]["last_start"]
        # The service was stopped before the stop, the shell closed: nothing was running to come back.
        report = calls["start"]["last_start"]
        assert (list(report["services"]), list(report["shells_closed"])) == ([], [])


def test_a_delete_says_the_same_in_the_cli_and_over_mcp(faces: dict[str, Calls]) -> None:
    # The SDK's delete_workspace returns the id alone.
    assert faces["cli"]["delete"].keys() == faces["mcp"]["delete"].keys() == {"id", "deleted"}
    assert faces["cli"]["delete"]["deleted"] is faces["mcp"]["delete"]["deleted"] is True
