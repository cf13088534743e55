"""The service tools over stdio, through the real MCP client, on the mock backend.

The server runs as `python -m roost.mcp` in a subprocess with its own
ROOST_HOME; every wait has a deadline.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import TextContent

from helpers import pids_with_env
from roost.backends.processes import WORKSPACE_MARKER
from roost.client import Roost
from roost.errors import RoostError

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 20.0
SERVICE_TOOLS = {"service_start", "service_list", "service_status", "service_logs", "service_stop"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    # A failed test may leave workspaces (and their services) behind.
    with Roost(home=home, backend="mock") as roost:
        for info in roost.list_workspaces():
            try:
                roost.workspace(info.id).delete(force=True)
            except RoostError:
                pass


@asynccontextmanager
async def mcp_session(profile: str, home: Path, errlog: TextIO) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "roost.mcp", "--profile", profile],
        env={"ROOST_HOME": str(home), "ROOST_BACKEND": "mock"},
        cwd=str(home.parent),
    )
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    result = await session.call_tool(tool, arguments)
    block = result.content[0]
    assert not result.is_error, block.text if isinstance(block, TextContent) else block
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail; return the `error` object from its text."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, TextContent)
    error: dict[str, Any] = json.loads(block.text)["error"]
    return error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_service_tools_start_list_log_and_stop_and_only_the_full_profile_has_them(
    home: Path, tmp_path: Path
) -> None:
    tools: dict[str, set[str]] = {}
    with open(tmp_path / "server.log", "w+") as errlog, anyio.fail_after(DEADLINE):

        async def core_tools() -> None:
            async with mcp_session("core", home, errlog) as core:
                tools["core"] = {tool.name for tool in (await core.list_tools()).tools}

        async with anyio.create_task_group() as tg, mcp_session("full", home, errlog) as session:
            tg.start_soon(core_tools)  # a second server, started while this one works
            tools["full"] = {tool.name for tool in (await session.list_tools()).tools}
            ws = (await call(session, "workspace_create"))["id"]
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            web = await call(
                session,
                "service_start",
                workspace=ws,
                name="web",
                command=["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                ready_http=url,
                ready_interval_ms=10,
            )
            assert (web["state"], web["probe"]["kind"], web["probe"]["target"]) == ("ready", "http", url)
            assert web["pid"] and web["ready_at"]

            listed = await call(session, "service_list", workspace=ws)
            assert [(s["name"], s["state"]) for s in listed["services"]] == [("web", "ready")]
            assert (await call(session, "service_status", workspace=ws, name="web"))["pid"] == web["pid"]

            deadline = time.monotonic() + 5.0
            while True:  # the probe's request reaches the log through the agent's pump
                logs = await call(session, "service_logs", workspace=ws, name="web", stream="stderr", tail=5)
                if '"GET / HTTP/1.1" 200' in logs["log"] or time.monotonic() > deadline:
                    break
                await anyio.sleep(0.01)
            assert '"GET / HTTP/1.1" 200' in logs["log"]
            assert (logs["name"], logs["stream"], logs["truncated_for_model"]) == ("web", "stderr", False)

            failed = await call(
                session,
                "service_start",
                workspace=ws,
                name="bad",
                command="echo boom >&2; exit 3",
                ready_file=".never",
                ready_interval_ms=10,
            )
            assert (failed["state"], failed["reason"]) == ("failed", "process exited with code 3")
            assert "boom" in failed["log_tail"]

            two = await call_error(
                session, "service_start", workspace=ws, name="two", command="true", ready_file="x", ready_tcp="1"
            )
            assert two["code"] == "invalid_argument"
            taken = await call_error(session, "service_start", workspace=ws, name="web", command="sleep 1")
            assert taken["code"] == "service_exists"

            began = time.monotonic()
            stopped = await call(session, "service_stop", workspace=ws, name="web")
            assert time.monotonic() - began < 1.0
            assert stopped["state"] == "stopped"
            assert (await call(session, "workspace_status", workspace=ws))["services"] == {
                "failed": 1,
                "stopped": 1,
            }
            await call(session, "workspace_delete", workspace=ws)

    assert tools["full"] >= SERVICE_TOOLS
    assert not {name for name in tools["core"] if name.startswith("service_")}
    assert not pids_with_env(WORKSPACE_MARKER, ws)
