"""Bad input through MCP: every numeric parameter of every tool, fed the whole table of bad values,
is a tool error with a refusal code and a hint (never `internal`), and nothing is created or started.

The table goes straight to the server's `call_tool`, past any client: an MCP client may turn NaN
into null on its own, and the server must hold whatever arrives. One test also speaks raw JSON-RPC
over stdio, where `NaN` and `Infinity` arrive as JSON literals.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp.server import MCPServer
from mcp.types import CallToolResult, TextContent

from helpers import delete_all_workspaces
from roost.client import Roost
from roost.mcp.server import ServeOptions, build_server

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

# No numeric parameter takes any of these: non-finite, past int64, booleans, text, containers.
BAD_NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, 1e308, 2**64, -(2**64), True, False, "abc", [1]]
REFUSALS = {"invalid_argument", "read_too_large"}
# (tool, numeric parameter, the other arguments it needs); WS and SH are filled in.
NUMERIC_PARAMETERS: list[tuple[str, str, dict[str, Any]]] = [
    ("workspace_create", "ttl_seconds", {}),
    ("workspace_create", "vcpus", {}),
    ("workspace_create", "mem_mib", {}),
    ("workspace_update", "ttl_seconds", {"workspace": "WS"}),
    ("workspace_exec", "timeout", {"workspace": "WS", "command": "true"}),
    ("workspace_exec", "max_output_chars", {"workspace": "WS", "command": "true"}),
    ("run", "timeout", {"command": "true"}),
    ("workspace_logs", "exec_id", {"workspace": "WS"}),
    ("workspace_logs", "offset", {"workspace": "WS", "exec_id": 1}),
    ("workspace_logs", "max_bytes", {"workspace": "WS", "exec_id": 1}),
    ("workspace_logs", "limit", {"workspace": "WS"}),
    ("file_list", "max_entries", {"workspace": "WS"}),
    ("file_read", "offset", {"workspace": "WS", "path": "note.txt"}),
    ("file_read", "max_bytes", {"workspace": "WS", "path": "note.txt"}),
    ("file_write", "mode", {"workspace": "WS", "path": "mode.txt", "content": "x"}),
    ("shell_open", "cols", {"workspace": "WS"}),
    ("shell_open", "rows", {"workspace": "WS"}),
    ("shell_read", "cursor", {"workspace": "WS", "shell": "SH"}),
    ("shell_read", "max_bytes", {"workspace": "WS", "shell": "SH"}),
    ("shell_read", "wait_for_idle_ms", {"workspace": "WS", "shell": "SH"}),
    ("shell_read", "timeout_ms", {"workspace": "WS", "shell": "SH"}),
    ("shell_resize", "cols", {"workspace": "WS", "shell": "SH", "rows": 24}),
    ("service_start", "ready_timeout", {"workspace": "WS", "name": "svc", "command": "sleep 60", "ready_tcp": "9"}),
    ("service_start", "ready_interval_ms", {"workspace": "WS", "name": "svc", "command": "sleep 60"}),
    ("service_logs", "tail", {"workspace": "WS", "name": "svc"}),
    ("service_stop", "timeout", {"workspace": "WS", "name": "svc"}),
    ("workspace_diff", "max_bytes", {"workspace": "WS"}),
]
# Bad values that are not numbers: ranges, names, env, readiness specs, commands.
OTHER_BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("workspace_create", {"name": "ws-0123456789"}, "invalid_argument"),
    ("workspace_create", {"name": "ws-web"}, "invalid_argument"),
    ("workspace_create", {"labels": {"bad key": "v"}}, "invalid_argument"),
    ("workspace_create", {"network_policy": "open"}, "invalid_argument"),
    ("workspace_create", {"network_policy": "allowlist", "allow": ["@cargo"]}, "invalid_argument"),
    ("workspace_create", {"network_policy": "allowlist", "allow": ["*bad.example"]}, "invalid_argument"),
    ("workspace_create", {"publish": ["70000"]}, "invalid_argument"),
    ("workspace_create", {"publish": ["10.0.0.1:8000:80"]}, "invalid_argument"),
    ("workspace_create", {"network_policy": "egress"}, "network_unsupported"),
    ("workspace_create", {"publish": ["8000"]}, "network_unsupported"),
    ("run", {"command": "true", "network_policy": "allowlist", "allow": ["a..b"]}, "invalid_argument"),
    ("run", {"command": "true", "network_policy": "egress"}, "network_unsupported"),
    ("workspace_update", {"workspace": "WS", "name": "ws-x"}, "invalid_argument"),
    ("workspace_exec", {"workspace": "WS", "command": "true", "env": {"1A": "x"}}, "invalid_argument"),
    ("workspace_exec", {"workspace": "WS", "command": "true", "env": {"A": "x\0y"}}, "invalid_argument"),
    ("workspace_exec", {"workspace": "WS", "command": ["ls", "a\0b"]}, "invalid_argument"),
    ("workspace_exec", {"workspace": "WS", "command": "   "}, "invalid_argument"),
    ("run", {"command": "true", "env_vars": {"A=B": "x"}}, "invalid_argument"),
    ("shell_open", {"workspace": "WS", "env": {"": "x"}}, "invalid_argument"),
    ("file_read", {"workspace": "WS", "path": "a\0b"}, "invalid_argument"),
    ("service_start", {"workspace": "WS", "name": "svc", "command": "sleep 60", "ready_tcp": "0"}, "invalid_argument"),
    (
        "service_start",
        {"workspace": "WS", "name": "svc", "command": "sleep 60", "ready_tcp": "70000"},
        "invalid_argument",
    ),
    ("service_start", {"workspace": "WS", "name": "svc", "command": "x", "ready_http": "ftp://h/"}, "invalid_argument"),
    ("service_start", {"workspace": "WS", "name": "svc", "command": "x", "ready_http": "http://"}, "invalid_argument"),
    (
        "service_start",
        {"workspace": "WS", "name": "svc", "command": "x", "ready_file": "/etc/x"},
        "path_outside_workspace",
    ),
    ("service_start", {"workspace": "WS", "name": "svc", "command": "x", "ready_command": " "}, "invalid_argument"),
    ("service_start", {"workspace": "WS", "name": "svc", "command": "x", "env": {"1A": "x"}}, "invalid_argument"),
    ("service_start", {"workspace": "WS", "name": "Bad Name", "command": "x"}, "invalid_argument"),
    ("snapshot_create", {"workspace": "WS", "name": "a b"}, "invalid_argument"),
    ("workspace_diff", {"workspace": "WS", "against": "../x"}, "invalid_argument"),
]


def _error(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    block = result.content[0]
    assert isinstance(block, TextContent)
    assert "Traceback" not in block.text
    body: dict[str, Any] = json.loads(block.text)["error"]
    return body


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[MCPServer, dict[str, str]]]:
    """A full-profile server on the mock backend, with a workspace (and a shell in it) to aim at.

    The names map WS, SH and HOME to the workspace id, the shell id and the state directory.
    """
    roost = Roost(home=tmp_path / "home", backend="mock")
    host_files = tmp_path / "host"  # an allowed root may not hold roost's own state
    host_files.mkdir()
    try:
        server = build_server(ServeOptions(profile="full", allow_roots=(str(host_files),)), roost)
        ws = roost.create_workspace("debian:12", name="target", ephemeral=False)
        ws.files.write("note.txt", "hello\n")
        shell = ws.shells.open()
        yield server, {"WS": ws.id, "SH": shell.id, "HOME": str(roost.home)}
    finally:
        delete_all_workspaces(roost)
        roost.close()


def _filled(args: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {key: names.get(value, value) if isinstance(value, str) else value for key, value in args.items()}


async def test_every_numeric_parameter_refuses_every_bad_number(served: tuple[MCPServer, dict[str, str]]) -> None:
    server, names = served
    workspaces = Path(names["HOME"]) / "workspaces"
    before = sorted(os.listdir(workspaces))
    for tool, parameter, args in NUMERIC_PARAMETERS:
        for value in BAD_NUMBERS:
            result = await server.call_tool(tool, {**_filled(args, names), parameter: value})
            assert isinstance(result, CallToolResult)
            error = _error(result)
            assert error["code"] in REFUSALS, (tool, parameter, value, error)
            assert error["hint"], (tool, parameter, value, error)
    assert sorted(os.listdir(workspaces)) == before


async def test_every_other_bad_argument_is_refused_before_anything_happens(
    served: tuple[MCPServer, dict[str, str]],
) -> None:
    server, names = served
    for tool, args, code in OTHER_BAD_CALLS:
        result = await server.call_tool(tool, _filled(args, names))
        assert isinstance(result, CallToolResult)
        error = _error(result)
        assert error["code"] == code, (tool, args, error)
        assert error["hint"], (tool, args, error)
    listed = await server.call_tool("service_list", {"workspace": names["WS"]})
    assert isinstance(listed, CallToolResult)
    assert listed.structured_content == {"services": []}
    workspaces = await server.call_tool("workspace_list", {})
    assert isinstance(workspaces, CallToolResult) and workspaces.structured_content is not None
    assert [w["name"] for w in workspaces.structured_content["workspaces"]] == ["target"]


class RawStdio:
    """JSON-RPC lines to and from a server process, every read bounded by a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.pending = b""

    def send(self, line: str) -> None:
        self.stdin.write(line.encode() + b"\n")
        self.stdin.flush()

    def reply(self, request_id: int, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                message = json.loads(line)
                if message.get("id") == request_id:
                    return message  # type: ignore[no-any-return]
            left = deadline - time.monotonic()
            assert left > 0, f"no reply to request {request_id}"
            ready, _, _ = select.select([self.stdout], [], [], left)
            if ready:
                chunk = os.read(self.stdout.fileno(), 65536)
                assert chunk, f"the server exited before answering request {request_id}"
                self.pending += chunk


def test_json_nan_and_infinity_over_stdio_are_refused_and_the_server_keeps_serving(tmp_path: Path) -> None:
    env = {**os.environ, "ROOST_HOME": str(tmp_path / "home"), "ROOST_BACKEND": "mock"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.mcp", "--profile", "full"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
    )
    server = RawStdio(proc)
    try:
        server.send(
            '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
            '"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}'
        )
        server.reply(0)
        server.send('{"jsonrpc":"2.0","method":"notifications/initialized"}')
        calls = [
            ("workspace_create", '{"ttl_seconds": NaN}'),
            ("workspace_create", '{"ttl_seconds": Infinity}'),
            ("workspace_create", '{"mem_mib": 1e999}'),
            ("run", '{"command": "true", "timeout": NaN}'),
            ("run", '{"command": "true", "timeout": -Infinity}'),
        ]
        for n, (tool, args) in enumerate(calls, start=1):
            server.send(
                f'{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}'
            )
            result = server.reply(n)["result"]
            assert result["isError"], (tool, args, result)
            assert json.loads(result["content"][0]["text"])["error"]["code"] == "invalid_argument", (tool, args)
        server.send('{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"workspace_list","arguments":{}}}')
        assert server.reply(99)["result"]["structuredContent"] == {"workspaces": []}
    finally:
        server.stdin.close()  # end of input: the server exits on its own
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
