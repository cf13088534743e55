"""A client that cancels a running `workspace_exec` (notifications/cancelled) stops its command.

Over stdio with the real MCP client: the call is abandoned as a client does it (its task cancelled,
which sends the cancellation), the command's process group is gone within moments, the exec's
history entry says `cancelled`, and the server goes on serving.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TextIO

import anyio
import pytest
from mcp_helpers import call, mcp_session

from helpers import pids_with_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0
PROMPTLY = 3.0


async def _wait_until(predicate: object, what: str, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(0.02)


async def test_cancelling_an_exec_kills_its_process_group_and_ends_the_call(mcp_home: Path, errlog: TextIO) -> None:
    mark = uuid.uuid4().hex
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws_id = (await call(session, "workspace_create"))["id"]
            async with anyio.create_task_group() as group:

                async def long_exec() -> None:
                    await session.call_tool(
                        "workspace_exec",
                        {"workspace": ws_id, "command": "sleep 30 & sleep 30; wait", "env": {"CANCEL_MARK": mark}},
                    )

                group.start_soon(long_exec)
                await _wait_until(lambda: len(pids_with_env("CANCEL_MARK", mark)) >= 2, "both sleeps to run")
                began = time.monotonic()
                group.cancel_scope.cancel()
            await _wait_until(lambda: not pids_with_env("CANCEL_MARK", mark), "the process group to go", PROMPTLY)
            gone_after = time.monotonic() - began
            # The exec's thread writes the history entry once the agent has answered: wait for it.
            with anyio.fail_after(PROMPTLY):
                while not (history := (await call(session, "workspace_logs", workspace=ws_id))["execs"]):
                    await anyio.sleep(0.05)
            after = await call(session, "workspace_exec", workspace=ws_id, command="echo still here")
            await call(session, "workspace_delete", workspace=ws_id)

    assert gone_after < PROMPTLY
    assert history[-1]["error"] == "cancelled"
    assert after["stdout"] == "still here\n"
