"""The MCP server in process: options, profiles, and every failure shaped as a roost tool error."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from roost.cli.parser import build_parser
from roost.client import Roost
from roost.errors import AgentError, InvalidArgument, NotFound, Remedy, operator_remedy
from roost.mcp.__main__ import options_from_args
from roost.mcp.results import offload
from roost.mcp.server import PROFILES, ServeOptions, build_server
from roost.serve_options import PROFILE_NAMES

pytestmark = pytest.mark.anyio

CORE_TOOLS = {
    "run",
    "workspace_create",
    "workspace_list",
    "workspace_status",
    "workspace_stats",
    "workspace_update",
    "workspace_delete",
    "workspace_exec",
    "workspace_logs",
    "workspace_sync_push",
    "file_list",
    "file_read",
    "file_write",
    "file_delete",
    "patch_apply",
    "env_list",
    "workspace_diff",
    "workspace_export",
    "snapshot_create",
    "snapshot_list",
    "snapshot_delete",
    "workspace_reset",
    "workspace_stop",
    "workspace_start",
    "workspace_restart",
    "workspace_fork",
    "disk_list",
    "disk_read",
    "disk_export",
    "disk_usage",
    "disk_check",
    "disk_grow",
}
SERVICE_TOOLS = {"service_start", "service_list", "service_status", "service_logs", "service_stop"}
NETWORK_TOOLS = {"network_show", "network_set", "network_log"}
SECRET_TOOLS = {"secret_list", "workspace_secret_add", "workspace_secret_remove", "workspace_secret_list"}
ENV_TOOLS = {"env_create", "env_inspect", "env_remove"}
SHELL_TOOLS = {"shell_open", "shell_list", "shell_read", "shell_write", "shell_signal", "shell_resize", "shell_close"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def _client(tmp_path: Path, profile: str) -> AsyncIterator[Client]:
    roost = Roost(home=tmp_path / "home", backend="mock")
    (tmp_path / "allowed").mkdir(exist_ok=True)
    server = build_server(ServeOptions(profile=profile, allow_roots=(str(tmp_path / "allowed"),)), roost)
    async with Client(server) as client:
        yield client


def _error(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, TextContent)
    assert "Traceback" not in block.text
    body: dict[str, Any] = json.loads(block.text)["error"]
    assert result.structured_content == {"error": body}
    return body


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_host_is_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        build_server(ServeOptions(transport="http", host=host))
    assert info.value.code == "invalid_argument"


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:8765"), ("::1", "http://[::1]:8765"), ("localhost", "http://localhost:8765")],
)
def test_loopback_hosts_are_accepted_and_served_at_their_url(host: str, url: str) -> None:
    options = ServeOptions(transport="http", host=host)
    options.validate()
    assert options.url == url


@pytest.mark.parametrize("options", [ServeOptions(profile="bogus"), ServeOptions(transport="bogus")])
def test_unknown_profile_or_transport_is_refused(options: ServeOptions) -> None:
    with pytest.raises(InvalidArgument):
        options.validate()


def test_no_host_directory_is_allowed_unless_named() -> None:
    assert ServeOptions().allow_roots == ()
    assert options_from_args([]) == ServeOptions()


SERVE_ARGV = ["--profile", "core", "--transport", "http", "--host", "::1", "--port", "9000"]
SERVE_ARGV += ["--allow-root", "/a", "--allow-root", "/b", "--token-file", "/t", "--backend", "mock"]


def test_roost_mcp_serve_and_the_server_program_read_one_grammar_into_the_same_options() -> None:
    cli = build_parser().parse_args(["--home", "/h", "mcp", "serve", *SERVE_ARGV])
    expected = ServeOptions("core", "http", "::1", 9000, ("/a", "/b"), home="/h", backend="mock", token_file="/t")
    assert ServeOptions.from_arguments(cli) == options_from_args([*SERVE_ARGV, "--home", "/h"]) == expected
    assert ServeOptions.from_arguments(build_parser().parse_args(["mcp", "serve"])) == ServeOptions()


@pytest.mark.parametrize(
    "options", [ServeOptions(), ServeOptions("run", home="/h", backend="mock", allow_roots=("x",))]
)
def test_the_options_the_cli_hands_the_server_program_read_back_whole(options: ServeOptions) -> None:
    assert options_from_args(options.argv()) == options


def test_every_profile_name_the_options_accept_has_its_tools() -> None:
    assert tuple(PROFILES) == PROFILE_NAMES


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("run", {"run"}),
        ("core", CORE_TOOLS),
        ("full", CORE_TOOLS | SHELL_TOOLS | SERVICE_TOOLS | NETWORK_TOOLS | SECRET_TOOLS | ENV_TOOLS),
    ],
)
async def test_each_profile_lists_its_tools(profile: str, expected: set[str], tmp_path: Path) -> None:
    async with _client(tmp_path, profile) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == expected
    assert all(tool.description for tool in tools)
    assert set(PROFILES) == {"run", "core", "full"}


async def test_roost_error_becomes_a_tool_error_with_code_message_and_hint(tmp_path: Path) -> None:
    async with _client(tmp_path, "core") as client:
        result = await client.call_tool("workspace_status", {"workspace": "nope"})
    error = _error(result)
    assert error["code"] == "workspace_not_found"
    assert error["message"]
    assert error["hint"]


async def test_arguments_that_fail_the_schema_are_an_invalid_argument_error(tmp_path: Path) -> None:
    async with _client(tmp_path, "core") as client:
        result = await client.call_tool("workspace_exec", {"workspace": "w", "command": 5})
    error = _error(result)
    assert error["code"] == "invalid_argument"
    assert "command" in error["message"]


async def test_a_tool_outside_the_profile_is_an_unknown_tool_error(tmp_path: Path) -> None:
    async with _client(tmp_path, "run") as client:
        result = await client.call_tool("workspace_exec", {"workspace": "w", "command": "true"})
    assert _error(result)["code"] == "unknown_tool"


async def test_seed_path_outside_the_allowed_roots_is_refused(tmp_path: Path) -> None:
    async with _client(tmp_path, "run") as client:
        result = await client.call_tool("run", {"command": "true", "seed_path": "/etc"})
    error = _error(result)
    assert error["code"] == "path_not_allowed"
    assert "--allow-root" in error["hint"]


async def test_unexpected_exception_becomes_internal_without_a_traceback() -> None:
    def crash() -> dict[str, Any]:
        raise ZeroDivisionError("/home/secret/path")

    error = _error(await offload(crash))
    assert error["code"] == "internal"
    assert "/home/secret" not in error["message"]


async def test_roost_error_from_work_keeps_its_code() -> None:
    def missing() -> dict[str, Any]:
        raise NotFound("no such thing", code="exec_not_found", hint="look elsewhere")

    assert _error(await offload(missing)) == {
        "code": "exec_not_found",
        "message": "no such thing",
        "hint": "look elsewhere",
    }


async def test_blocking_work_runs_off_the_event_loop() -> None:
    started = anyio.Event()
    released = threading.Event()

    def blocked() -> dict[str, Any]:
        anyio.from_thread.run_sync(started.set)
        # Only the event loop sets this: were the work on the loop, it would never come.
        if not released.wait(timeout=3):
            raise AssertionError("the event loop was stalled by blocking work")
        return {"ok": True}

    results: list[CallToolResult] = []

    async def call() -> None:
        results.append(await offload(blocked))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await started.wait()
            released.set()
    assert results[0].structured_content == {"ok": True}


@pytest.mark.parametrize(
    ("remedy", "command", "tool_call"),
    [
        (
            Remedy("restart it", "workspace_restart", "ws-1"),
            "restart it: `roost workspace restart ws-1`",
            'restart it: call workspace_restart with workspace="ws-1"',
        ),
        (
            Remedy("remove it", "workspace_delete", "ws-1", ("force",)),
            "remove it: `roost workspace delete ws-1 --force`",
            'remove it: call workspace_delete with workspace="ws-1", force=true',
        ),
        (
            Remedy("see which shells there are", "shell_list", "ws-1"),
            "see which shells there are: `roost workspace shell list ws-1`",
            'see which shells there are: call shell_list with workspace="ws-1"',
        ),
        (Remedy("list them", "env_list"), "list them: `roost env list`", "list them: call env_list"),
        (
            operator_remedy("build it first", "env_build", "debian:12"),
            "build it first: `roost env build debian:12`",
            "build it first: ask whoever runs the MCP server to run `roost env build debian:12` on its host",
        ),
    ],
)
async def test_a_remedy_reaches_a_model_as_the_tool_to_call_not_a_cli_command(
    remedy: Remedy, command: str, tool_call: str
) -> None:
    error = AgentError("workspace ws-1 is unhealthy", code="workspace_unhealthy", remedy=remedy)

    def unhealthy() -> dict[str, Any]:
        raise error

    assert error.remedy is not None and error.remedy.as_command() == command  # what the CLI shows
    assert error.hint == remedy.as_method_call()  # what the SDK shows
    assert _error(await offload(unhealthy))["hint"] == tool_call
