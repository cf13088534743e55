"""A long `workspace_exec` whose client asks for progress hears, every few seconds, how long it has
run and how much output it has sent (the same heartbeat serves sync push, snapshots and creates)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import anyio
import pytest
from mcp_helpers import call, mcp_session

from roost.mcp.progress import HEARTBEAT_SECONDS

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0
# Output now and then for a little over two heartbeats.
TALKATIVE = (
    f"for i in $(seq {int(HEARTBEAT_SECONDS * 2.5 / 0.25)}); do head -c 1024 /dev/zero | tr '\\0' x; sleep 0.25; done"
)


async def test_a_long_exec_reports_its_time_and_output_as_progress(mcp_home: Path, errlog: TextIO) -> None:
    heard: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, message))

    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws_id = (await call(session, "workspace_create"))["id"]
            result = await session.call_tool(
                "workspace_exec", {"workspace": ws_id, "command": TALKATIVE}, progress_callback=on_progress
            )
            await call(session, "workspace_delete", workspace=ws_id)

    assert not result.is_error and isinstance(result.structured_content, dict)
    assert result.structured_content["stdout_bytes"] >= 10 * 1024
    assert len(heard) >= 2, heard
    assert [value for value, _ in heard] == sorted({value for value, _ in heard})  # growing, as MCP wants
    assert all(message and message.startswith("running: ") for _, message in heard), heard
    assert "KiB of output so far" in (heard[-1][1] or ""), heard
