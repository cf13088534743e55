"""Services kept by their restart policy come back with `workspace start`/`restart` in the CLI and over MCP,
on each backend that runs here; shells do not, and both faces say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import anyio
import pytest
from cli_helpers import RoostCli, backends_here, delete_leftovers, home_with_shared_images
from mcp_helpers import call, mcp_session

pytestmark = pytest.mark.e2e
DEADLINE = 60.0


@pytest.fixture(params=backends_here())
def backend_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RoostCli]:
    cli = RoostCli(home_with_shared_images(tmp_path / "home"), backend=request.param)
    yield cli
    delete_leftovers(cli)


def _ready(cli: RoostCli, ws_id: str) -> set[str]:
    services = cli.json("workspace", "service", "list", ws_id)["services"]
    return {s["name"] for s in services if s["state"] == "ready"}


def test_the_cli_says_which_services_came_back_and_which_shells_did_not(backend_cli: RoostCli) -> None:
    cli = backend_cli
    ws_id = cli.create()
    cli("workspace", "service", "start", ws_id, "web", "--restart", "always", "--", "sleep", "1000", check_rc=0)
    cli("workspace", "service", "start", ws_id, "once", "--", "sleep", "1000", check_rc=0)
    shell = cli.json("workspace", "shell", "open", ws_id)["id"]
    cli("workspace", "stop", ws_id, check_rc=0)

    human = cli("workspace", "start", ws_id, check_rc=0).stdout
    status = cli.json("workspace", "status", ws_id)
    restarted = cli.json("workspace", "restart", ws_id)

    assert human.splitlines() == [
        f"started {ws_id}: running",
        "services back: web",
        f"shells do not come back: closed {shell}",
    ]
    assert status["last_start"]["services"] == ["web"]
    assert status["last_start"]["shells_closed"] == [shell]
    assert (restarted["last_start"]["services"], restarted["last_start"]["shells_closed"]) == (["web"], [])
    assert _ready(cli, ws_id) == {"web"}


@pytest.mark.anyio
@pytest.mark.parametrize("backend", backends_here())
async def test_mcp_start_brings_kept_services_back(backend: str, mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(DEADLINE):
        home = home_with_shared_images(mcp_home)
        async with mcp_session("full", home, errlog, backend=backend) as session:
            ws = (await call(session, "workspace_create"))["id"]
            await call(session, "service_start", workspace=ws, name="web", command="sleep 1000", restart="on-failure")
            await call(session, "workspace_stop", workspace=ws)
            started = await call(session, "workspace_start", workspace=ws)
            services = (await call(session, "service_list", workspace=ws))["services"]
            await call(session, "workspace_delete", workspace=ws)

    assert started["last_start"]["services"] == ["web"]
    assert started["last_start"]["services_failed"] == []
    assert [(s["name"], s["state"]) for s in services] == [("web", "ready")]
