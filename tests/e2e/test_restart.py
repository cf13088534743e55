"""An agent killed under a workspace, as the CLI and an MCP client meet it: every face names the
same way out (`workspace restart`) in its own terms, and restarting brings the workspace back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import anyio
import pytest
from mcp_helpers import call, call_error, mcp_session

from helpers import kill_agent

if TYPE_CHECKING:
    from cli_helpers import RoostCli

AGENT_GONE_CODES = ("agent_unreachable", "agent_disconnected", "workspace_unhealthy")
DEADLINE = 20.0


@pytest.mark.e2e
def test_cli_names_restart_for_an_unhealthy_workspace_and_restart_revives_it(roost: RoostCli) -> None:
    ws_id = roost.create()
    roost("workspace", "file", "write", ws_id, "kept.txt", "--content", "kept", check_rc=0)
    kill_agent(roost.home, ws_id)
    command = f"`roost workspace restart {ws_id}`"

    error = roost.error(roost("workspace", "exec", ws_id, "--json", "--", "true"), 5, "agent_unreachable")
    human = roost("workspace", "status", ws_id, check_rc=0).stdout
    restarted = roost.json("workspace", "restart", ws_id)

    assert command in error["hint"]
    assert "state    unhealthy" in human
    assert command in human
    assert (restarted["state"], restarted["health"], restarted["hint"]) == ("running", "ok", None)
    assert roost.json("workspace", "exec", ws_id, "--", "cat", "kept.txt")["stdout"] == "kept"


@pytest.mark.e2e
@pytest.mark.anyio
async def test_mcp_names_the_restart_tool_not_a_cli_command(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws_id = (await call(session, "workspace_create"))["id"]
            kill_agent(mcp_home, ws_id)
            tool_call = f'call workspace_restart with workspace="{ws_id}"'

            error = await call_error(session, "workspace_exec", workspace=ws_id, command="true")
            status = await call(session, "workspace_status", workspace=ws_id)
            listed = (await call(session, "workspace_list"))["workspaces"]
            restarted = await call(session, "workspace_restart", workspace=ws_id)
            ran = await call(session, "workspace_exec", workspace=ws_id, command="echo back")

    assert error["code"] in AGENT_GONE_CODES
    for hint in (error["hint"], status["hint"], listed[0]["hint"]):
        assert tool_call in hint
        assert "roost " not in hint  # a model cannot run CLI commands
    assert status["state"] == "unhealthy"
    assert (restarted["state"], restarted["hint"]) == ("running", None)
    assert ran["stdout"] == "back\n"
