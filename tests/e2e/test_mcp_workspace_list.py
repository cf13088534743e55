"""workspace_list's filters over stdio with the real MCP client (the same filters as the CLI and SDK)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import anyio
import pytest
from mcp_helpers import call, call_error, mcp_session

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0


async def test_workspace_list_keeps_what_matches_every_filter(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as session:
            web = (await call(session, "workspace_create", labels={"team": "a", "tier": "web"}))["id"]
            other = (await call(session, "workspace_create", labels={"team": "b"}))["id"]
            await call(session, "workspace_stop", workspace=other)

            async def ids(**filters: object) -> set[str]:
                return {w["id"] for w in (await call(session, "workspace_list", **filters))["workspaces"]}

            assert await ids() == {web, other}
            assert await ids(labels={"team": "a"}) == {web}
            assert await ids(labels={"team": "a", "tier": "db"}) == set()
            assert await ids(state="stopped") == {other}
            assert await ids(state="running", backend="mock") == {web}
            error = await call_error(session, "workspace_list", state="asleep")
            assert error["code"] == "invalid_argument"
