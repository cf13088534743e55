"""The CLI and MCP faces of one rule: every command that meets an unhealthy workspace names the same way
out, in the face's own spelling (`roost workspace restart WS`; `call workspace_restart ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from cli_helpers import RoostCli, error_document
from mcp_helpers import call, call_error, mcp_session

from helpers import kill_agent
from roost.workspace import recovery

pytestmark = pytest.mark.e2e
AGENT_GONE_CODES = ("agent_unreachable", "agent_disconnected", "workspace_unhealthy", "workspace_not_stopped")


def test_every_cli_command_on_an_unhealthy_workspace_names_restart(roost: RoostCli, tmp_path: Path) -> None:
    ws = roost.create()
    roost("workspace", "file", "write", ws, "kept.txt", "--content", "kept", check_rc=0)
    kill_agent(roost.home, ws)
    way_out = recovery.restart(ws).as_command()
    commands = [
        ["exec", ws, "--json", "--", "true"],
        ["file", "list", ws],
        ["file", "read", ws, "kept.txt"],
        ["file", "write", ws, "new.txt", "--content", "x"],
        ["file", "delete", ws, "kept.txt"],
        ["shell", "open", ws],
        ["shell", "list", ws],
        ["service", "start", ws, "web", "--json", "--", "sleep", "100"],
        ["service", "list", ws],
        ["snapshot", "create", ws, "one"],
        ["snapshot", "list", ws],
        ["diff", ws],
        ["export", ws, "/workspace", "--output", str(tmp_path / "out")],
        ["reset", ws],
        ["stats", ws],
        ["start", ws],
    ]
    for command in commands:
        proc = roost("workspace", *command, *([] if "--json" in command else ["--json"]))
        assert proc.returncode != 0, command
        error = error_document(proc.stderr)
        assert error["code"] in AGENT_GONE_CODES, command
        assert error["hint"] == way_out, command
    assert roost.json("workspace", "status", ws)["hint"] == way_out
    assert roost.json("workspace", "stop", ws)["state"] == "stopped"


@pytest.mark.anyio
async def test_every_mcp_tool_on_an_unhealthy_workspace_names_the_restart_tool(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(60):
        async with mcp_session("full", mcp_home, errlog) as session:
            ws = (await call(session, "workspace_create"))["id"]
            kill_agent(mcp_home, ws)
            calls: list[tuple[str, dict[str, Any]]] = [
                ("workspace_exec", {"command": "true"}),
                ("file_list", {}),
                ("file_read", {"path": "kept.txt"}),
                ("file_write", {"path": "new.txt", "content": "x"}),
                ("file_delete", {"path": "kept.txt"}),
                ("shell_open", {}),
                ("shell_list", {}),
                ("service_start", {"name": "web", "command": "sleep 100"}),
                ("service_list", {}),
                ("snapshot_create", {"name": "one"}),
                ("snapshot_list", {}),
                ("workspace_diff", {}),
                ("workspace_reset", {}),
                ("workspace_stats", {}),
                ("workspace_start", {}),
            ]
            errors = {tool: await call_error(session, tool, workspace=ws, **args) for tool, args in calls}
            status = await call(session, "workspace_status", workspace=ws)
            stopped = await call(session, "workspace_stop", workspace=ws)

    way_out = recovery.restart(ws).as_tool_call()
    for tool, error in errors.items():
        assert error["code"] in AGENT_GONE_CODES, tool
        assert error["hint"] == way_out, tool
    assert status["hint"] == way_out
    assert stopped["state"] == "stopped"
