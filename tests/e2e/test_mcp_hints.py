"""Over MCP, every way out of a failure is a tool call a model can make, never a CLI command line.

A set of failures (a stopped workspace, an unhealthy one, a shell, service, snapshot, path, exec,
env or workspace that does not exist, a secret the server may not use) is driven over stdio: each
error keeps its stable code, and its text names a tool of the server and no `roost ...` command or
`--option`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp import ClientSession
from mcp_helpers import call, call_error, mcp_session

from helpers import kill_agent

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0
CLI_SPELLING = re.compile(r"\broost (workspace|env|runtime|doctor|mcp|secret)\b|`roost |(^|[\s(`\"])--[a-z]")


async def _failures(session: ClientSession, home: Path) -> dict[str, dict[str, Any]]:
    """code -> error, for each failure driven."""
    ws = (await call(session, "workspace_create"))["id"]
    errors = [
        await call_error(session, "shell_read", workspace=ws, shell="sh-nope"),
        await call_error(session, "service_logs", workspace=ws, name="nope"),
        await call_error(session, "snapshot_delete", workspace=ws, name="nope"),
        await call_error(session, "file_read", workspace=ws, path="nope.txt"),
        await call_error(session, "workspace_logs", workspace=ws, exec_id=99),
        await call_error(session, "workspace_status", workspace="nope"),
        await call_error(session, "workspace_create", env="no such env"),
        await call_error(session, "workspace_exec", workspace=ws, command="true", secret_env=["TOKEN"]),
    ]
    opened = await call(session, "shell_open", workspace=ws)
    await call(session, "shell_close", workspace=ws, shell=opened["id"])
    errors.append(await call_error(session, "shell_write", workspace=ws, shell=opened["id"], input="ls"))
    errors.append(await call_error(session, "disk_list", workspace=ws))
    await call(session, "workspace_stop", workspace=ws)
    errors.append(await call_error(session, "workspace_exec", workspace=ws, command="true"))
    await call(session, "workspace_start", workspace=ws)
    kill_agent(home, ws)
    errors.append(await call_error(session, "workspace_exec", workspace=ws, command="true"))
    await call(session, "workspace_delete", workspace=ws, force=True)
    return {error["code"]: error for error in errors}


async def test_no_error_names_a_cli_command_and_each_way_out_names_a_tool(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("full", mcp_home, errlog) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            errors = await _failures(session, mcp_home)

    assert {
        "shell_not_found",
        "service_not_found",
        "snapshot_not_found",
        "path_not_found",
        "exec_not_found",
        "workspace_not_found",
        "env_not_found",
        "secret_not_allowed",
        "shell_not_running",
        "workspace_stopped",
        "workspace_running",
    } <= set(errors)
    assert set(errors) & {"agent_unreachable", "agent_disconnected", "workspace_unhealthy"}
    for code, error in errors.items():
        text = json.dumps(error)
        assert not CLI_SPELLING.search(text), text
        if code != "secret_not_allowed":  # only whoever runs the server can allow a secret
            assert any(re.search(rf"\bcall {tool}\b", error["hint"]) for tool in tools), error


def test_the_check_sees_cli_spellings() -> None:
    assert CLI_SPELLING.search("start it with `roost workspace start ws-1`")
    assert CLI_SPELLING.search('{"hint": "pass --force"}')
    assert CLI_SPELLING.search("run roost env build debian:12")
    assert not CLI_SPELLING.search('start it: call workspace_start with workspace="ws-1"')
