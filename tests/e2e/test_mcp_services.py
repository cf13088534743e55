"""The service tools over stdio, through the real MCP client, on the mock backend.

The server runs as `python -m roost.mcp` in a subprocess with its own
ROOST_HOME; every wait has a deadline.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TextIO

import anyio
import pytest
from mcp_helpers import call, call_error, mcp_session

from helpers import pids_with_env
from roost.backends.processes import WORKSPACE_MARKER

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 20.0
SERVICE_TOOLS = {"service_start", "service_list", "service_status", "service_logs", "service_stop"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_service_tools_start_list_log_and_stop_and_only_the_full_profile_has_them(
    mcp_home: Path, errlog: TextIO
) -> None:
    tools: dict[str, set[str]] = {}
    with anyio.fail_after(DEADLINE):

        async def core_tools() -> None:
            async with mcp_session("core", mcp_home, errlog) as core:
                tools["core"] = {tool.name for tool in (await core.list_tools()).tools}

        async with anyio.create_task_group() as tg, mcp_session("full", mcp_home, errlog) as session:
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
