"""A workspace whose TTL has passed is reaped by whatever roost command comes next, and by a running MCP
server on its timer; each says so in one line. `list` shows the time left."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from cli_helpers import RoostCli
from mcp_helpers import call, call_error, mcp_session

pytestmark = pytest.mark.e2e


def test_any_command_reaps_an_expired_workspace_and_says_so(roost: RoostCli) -> None:
    doomed = roost.create("--ttl", "1")
    other = roost.create()
    time.sleep(1.2)

    ran = roost("workspace", "exec", other, "--", "true", check_rc=0)
    again = roost("workspace", "exec", other, "--", "true", check_rc=0)

    assert ran.stderr == f"roost: reaped 1 expired workspace(s): {doomed}\n"
    assert again.stderr == ""
    assert roost.workspace_dirs() == [other]


def test_list_shows_the_time_left(roost: RoostCli) -> None:
    lasting = roost.create("--ttl", "7200")
    forever = roost.create()

    listed = {w["id"]: w for w in roost.json("workspace", "list")["workspaces"]}
    human = roost("workspace", "list", check_rc=0).stdout.splitlines()

    assert 7100 < listed[lasting]["expires_in_seconds"] <= 7200
    assert listed[forever]["expires_in_seconds"] is None
    assert "TTL LEFT" in human[0]
    (row,) = [line for line in human if line.startswith(lasting)]
    assert " 1h59m " in row or " 2h00m " in row


@pytest.mark.anyio
async def test_a_running_mcp_server_reaps_on_its_timer(tmp_path: Path, mcp_home: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as errlog, anyio.fail_after(30):
        async with mcp_session("core", mcp_home, errlog, extra_args=("--reap-interval", "0.2")) as session:
            doomed = (await call(session, "workspace_create", ttl_seconds=1))["id"]
            await anyio.sleep(2.0)
            error = await call_error(session, "workspace_status", workspace=doomed)

    assert error["code"] == "workspace_not_found"
    assert f"roost MCP server: reaped 1 expired workspace(s): {doomed}" in log.read_text()
