"""The network tools: over stdio on the mock backend (which refuses every network but loopback), and in
process on the sandbox, where network_set changes a workspace's policy live and network_log pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp.types import CallToolResult
from mcp_helpers import call, call_error, mcp_session

from helpers import delete_all_workspaces
from roost.backends import get_backend
from roost.client import Roost
from roost.mcp.server import ServeOptions, build_server
from roost.network.attachment import network_available

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0
NETWORK_TOOLS = {"network_show", "network_set", "network_log"}
REPO = Path(__file__).resolve().parents[2]


async def test_the_network_tools_are_in_the_full_profile_and_mock_refuses_a_policy(
    mcp_home: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as core:
            assert not NETWORK_TOOLS & {tool.name for tool in (await core.list_tools()).tools}
        async with mcp_session("full", mcp_home, errlog) as session:
            assert {tool.name for tool in (await session.list_tools()).tools} >= NETWORK_TOOLS
            refused = await call_error(session, "workspace_create", network_policy="egress")
            assert refused["code"] == "network_unsupported" and "sandbox" in refused["hint"]
            ws = (await call(session, "workspace_create"))["id"]
            shown = await call(session, "network_show", workspace=ws)
            assert (shown["policy"], shown["enforced"], shown["ports"]) == ("off", False, [])
            assert (await call_error(session, "network_set", workspace=ws, policy="egress"))["code"] == (
                "network_unsupported"
            )
            bad = await call_error(session, "network_set", workspace=ws, policy="allowlist", allow=["@cargo"])
            assert bad["code"] == "invalid_argument"
            assert await call(session, "network_log", workspace=ws) == {"decisions": [], "total": 0}
            await call(session, "workspace_delete", workspace=ws)


@pytest.fixture
def sandbox_roost(tmp_path: Path) -> Iterator[Roost]:
    if not get_backend("sandbox").availability().available:
        pytest.skip("the sandbox backend is not available here")
    ok, why = network_available()
    if not ok:
        pytest.skip(why)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "images").symlink_to(Path(os.environ.get("ROOST_IMAGES") or REPO / ".cache" / "images"))
    roost = Roost(home=home, backend="sandbox")
    try:
        yield roost
    finally:
        delete_all_workspaces(roost)
        roost.close()


def _structured(result: Any) -> dict[str, Any]:
    assert isinstance(result, CallToolResult) and not result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_network_set_changes_a_sandbox_workspace_live_and_the_log_pages(sandbox_roost: Roost) -> None:
    host_files = sandbox_roost.home.parent / "host"  # an allowed root may not hold roost's own state
    host_files.mkdir()
    server = build_server(ServeOptions(profile="full", allow_roots=(str(host_files),)), sandbox_roost)
    created = _structured(
        await server.call_tool("workspace_create", {"network_policy": "allowlist", "allow": ["allowed.test"]})
    )
    ws = created["id"]
    assert (created["network"]["policy"], created["network"]["allow"]) == ("allowlist", ["allowed.test"])
    assert created["network"]["enforced"] is True
    # Three denied lookups (no resolver upstream answers them: they are refused by the policy first).
    script = "import socket\nfor n in ('a.invalid', 'b.invalid', 'c.invalid'):\n    try: socket.gethostbyname(n)\n    except OSError: pass"
    _structured(await server.call_tool("workspace_exec", {"workspace": ws, "command": ["python3", "-c", script]}))
    page = _structured(await server.call_tool("network_log", {"workspace": ws, "denied": True, "limit": 1}))
    assert page["total"] >= 3 and len(page["decisions"]) == 1 and "before=" in page["more"]
    assert page["decisions"][0]["verdict"] == "denied"
    older = _structured(
        await server.call_tool("network_log", {"workspace": ws, "denied": True, "limit": 500, "before": 1})
    )
    assert len(older["decisions"]) == 1 and "more" not in older
    web = _structured(
        await server.call_tool(
            "service_start",
            {
                "workspace": ws,
                "name": "web",
                "command": "python3 -m http.server 9000",
                "ready_tcp": "9000",
                "publish": ["9000"],
            },
        )
    )
    (port,) = web["ports"]
    assert (port["guest_port"], port["service"]) == (9000, "web") and port["host_port"] > 0
    taken = await server.call_tool(
        "service_start",
        {"workspace": ws, "name": "web2", "command": "sleep 60", "publish": [f"{port['host_port']}:9001"]},
    )
    assert isinstance(taken, CallToolResult) and taken.is_error and "port_in_use" in str(taken.content)
    changed = _structured(await server.call_tool("network_set", {"workspace": ws, "policy": "egress"}))
    assert (changed["policy"], changed["allow"], changed["enforced"]) == ("egress", [], True)
    _structured(await server.call_tool("workspace_delete", {"workspace": ws}))
