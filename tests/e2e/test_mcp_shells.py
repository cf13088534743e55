"""Shell tools over MCP stdio: the real client against `python -m roost.mcp`, mock backend.

The full profile offers shell_open/write/read/signal/resize/list/close; the
core profile offers none of them. Every wait has a deadline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from cli_helpers import backends_here, home_with_shared_images
from mcp import ClientSession
from mcp_helpers import call, call_error, mcp_session

from helpers import cmdline, pid_alive, pids_with_env
from roost.backends.processes import WORKSPACE_MARKER

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0
SHELL_TOOLS = {"shell_open", "shell_list", "shell_read", "shell_write", "shell_signal", "shell_resize", "shell_close"}


async def poll(what: str, check: Any, timeout: float = 10.0) -> Any:
    """Await `check()` until it returns something truthy, within `timeout` seconds."""
    try:
        with anyio.fail_after(timeout):
            while not (value := await check()):
                await anyio.sleep(0.01)  # the poll interval of a deadline-bounded wait
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
    return value


async def test_an_agent_drives_a_shell_over_mcp(tmp_path: Path, mcp_home: Path, errlog: TextIO) -> None:
    allowed = tmp_path / "allowed"  # a root may not hold the server's ROOST_HOME (tmp_path/home)
    allowed.mkdir()
    with anyio.fail_after(DEADLINE):
        tools: dict[str, set[str]] = {}

        async def list_tools(profile: str) -> None:
            async with mcp_session(profile, mcp_home, errlog, allow_root=allowed) as session:
                tools[profile] = {tool.name for tool in (await session.list_tools()).tools}

        async with anyio.create_task_group() as tg:
            tg.start_soon(list_tools, "core")
            async with mcp_session("full", mcp_home, errlog, allow_root=allowed) as session:
                assert {tool.name for tool in (await session.list_tools()).tools} >= SHELL_TOOLS
                await _drive_a_shell(session)
        assert not tools["core"] & SHELL_TOOLS


async def _drive_a_shell(session: ClientSession) -> None:
    ws = (await call(session, "workspace_create"))["id"]
    opened = await call(session, "shell_open", workspace=ws, cols=100, rows=30)
    shell = opened["id"]
    assert (opened["state"], opened["cols"], opened["rows"]) == ("running", 100, 30)

    first = await call(session, "shell_read", workspace=ws, shell=shell)  # plain, after 300 ms of quiet
    assert first["plain"] is True and first["cursor"] == 0
    cursor = first["next_cursor"]
    assert (await call(session, "shell_write", workspace=ws, shell=shell, input="echo mcp-$((40+2))"))["written"] == 19

    async def echoed() -> dict[str, Any] | None:
        out = await call(session, "shell_read", workspace=ws, shell=shell, cursor=cursor, wait_for_idle_ms=50)
        return out if "mcp-42\n" in out["data"] else None

    out = await poll("the echo", echoed)
    assert "\x1b" not in out["data"] and "\r" not in out["data"]
    assert out["next_cursor"] > cursor

    # Output is capped per call; next_cursor pages through the rest.
    await call(session, "shell_write", workspace=ws, shell=shell, input="head -c 100000 /dev/zero | tr '\\0' y")
    flood_start = out["next_cursor"]

    async def flooded() -> bool:
        page = await call(session, "shell_read", workspace=ws, shell=shell, cursor=flood_start, wait_for_idle_ms=0)
        return bool(page["end"] > flood_start + 100000)

    await poll("the flood", flooded)
    page = await call(session, "shell_read", workspace=ws, shell=shell, cursor=flood_start, plain=False)
    assert len(page["data"]) == 16 * 1024 == page["next_cursor"] - flood_start
    assert page["next_cursor"] < page["end"]

    await call(session, "shell_write", workspace=ws, shell=shell, input="sleep 100")

    async def sleeper() -> list[int]:
        return [p for p in pids_with_env(WORKSPACE_MARKER, ws) if cmdline(p) == ["sleep", "100"]]

    (pid,) = await poll("sleep to start", sleeper)
    assert await call(session, "shell_signal", workspace=ws, shell=shell) == {"id": shell, "signal": "INT"}

    async def interrupted() -> bool:
        return not pid_alive(pid)

    await poll("sleep to be interrupted", interrupted)
    resized = await call(session, "shell_resize", workspace=ws, shell=shell, cols=90, rows=20)
    assert resized == {"id": shell, "cols": 90, "rows": 20}
    listed = await call(session, "shell_list", workspace=ws)
    assert [(s["id"], s["state"], s["cols"]) for s in listed["shells"]] == [(shell, "running", 90)]

    closed = await call(session, "shell_close", workspace=ws, shell=shell)
    assert closed["state"] == "closed"
    error = await call_error(session, "shell_write", workspace=ws, shell=shell, input="true")
    assert error["code"] == "shell_not_running"
    assert error["hint"].endswith(f'call shell_open with workspace="{ws}"'), error
    error = await call_error(session, "shell_read", workspace=ws, shell="sh-00000000")
    assert error["code"] == "shell_not_found"
    assert error["hint"] == f'see which shells there are: call shell_list with workspace="{ws}"', error
    error = await call_error(session, "shell_read", workspace=ws, shell=shell, max_bytes=10**7)
    assert error["code"] == "invalid_argument"
    await call(session, "workspace_delete", workspace=ws)


@pytest.mark.parametrize("backend", backends_here())
async def test_an_agent_runs_commands_in_a_shell_and_waits_for_them_over_mcp(
    backend: str, mcp_home: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE * 2):
        home = home_with_shared_images(mcp_home)
        async with mcp_session("full", home, errlog, backend=backend) as session:
            ws = (await call(session, "workspace_create"))["id"]
            shell = (await call(session, "shell_open", workspace=ws))["id"]

            async def run(line: str, **kw: Any) -> dict[str, Any]:
                return await call(session, "shell_write", workspace=ws, shell=shell, input=line, and_wait=True, **kw)

            silent = await run("sleep 0.5; false", timeout_ms=60_000)
            assert (silent["ended_by"], silent["exit_code"], silent["data"]) == (
                "command_done",
                1,
                "sleep 0.5; false\n",
            )
            busy = await run("yes | head -c 2000000; echo; echo done-$((40+2))", timeout_ms=60_000)
            assert (busy["ended_by"], busy["exit_code"]) == ("command_done", 0)
            assert busy["end"] - busy["cursor"] > 2_000_000
            fake = await run(
                "printf '\\033]6973;roost;0123456789abcdef;0\\007'; sleep 0.3; echo after", timeout_ms=60_000
            )
            assert fake["ended_by"] == "command_done" and "after\n" in fake["data"]

            timed_out = await run("echo begun; sleep 100", timeout_ms=300)
            assert (timed_out["ended_by"], timed_out["exit_code"]) == ("timeout", None)
            assert "begun\n" in timed_out["data"]
            await call(session, "shell_signal", workspace=ws, shell=shell)
            after = await call(
                session, "shell_read", workspace=ws, shell=shell, cursor=timed_out["cursor"], until_command_done=True
            )
            assert (after["ended_by"], after["exit_code"]) == ("command_done", 130)

            await call(session, "shell_write", workspace=ws, shell=shell, input="sleep 0.3; echo port-$((8000+80))")
            seen = await call(
                session, "shell_read", workspace=ws, shell=shell, cursor=after["next_cursor"], until_pattern=r"port-\d+"
            )
            assert seen["ended_by"] == "pattern" and "port-8080" in seen["data"]

            error = await call_error(session, "shell_read", workspace=ws, shell=shell, until_pattern="(")
            assert error["code"] == "invalid_argument" and "roost " not in error["hint"]
            gone = await run("exit 2", timeout_ms=60_000)
            assert (gone["ended_by"], gone["state"], gone["exit_code"]) == ("shell_exited", "exited", 2)
            await call(session, "workspace_delete", workspace=ws)
