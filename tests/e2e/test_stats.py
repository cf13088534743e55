"""`workspace stats` in the CLI (a table, or `--json`) and as MCP's `workspace_stats`: one shape in both."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import anyio
import pytest
from cli_helpers import RoostCli
from mcp_helpers import call, mcp_session

pytestmark = pytest.mark.e2e
FIELDS = {
    "id",
    "at",
    "source",
    "cpu_seconds",
    "memory_bytes",
    "memory_peak_bytes",
    "pids",
    "workspace_disk_bytes",
    "disk_bytes",
    "limits",
}


def test_the_cli_shows_usage_beside_the_limits(roost: RoostCli) -> None:
    ws_id = roost.create("--mem-mib", "512")
    roost("workspace", "exec", ws_id, "--", "sh", "-c", "head -c 1048576 /dev/zero > blob", check_rc=0)

    found = roost.json("workspace", "stats", ws_id)
    human = roost("workspace", "stats", ws_id, check_rc=0).stdout.splitlines()

    assert set(found) == FIELDS
    assert found["limits"] == {"vcpus": None, "memory_bytes": 512 * 1024 * 1024, "pids": None}
    assert found["workspace_disk_bytes"] >= 1024 * 1024
    assert found["memory_peak_bytes"] is None  # mock: a process tree keeps no peak
    assert [line.split()[0] for line in human] == [
        "id",
        "source",
        "cpu",
        "memory",
        "peak",
        "pids",
        "/workspace",
        "disk",
    ]
    assert "(limit 512.0 MiB)" in human[3]
    assert human[4].split()[1] == "unknown"


@pytest.mark.anyio
async def test_mcp_workspace_stats_has_the_cli_shape(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(30):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws = (await call(session, "workspace_create"))["id"]
            found = await call(session, "workspace_stats", workspace=ws)
            await call(session, "workspace_delete", workspace=ws)

    assert set(found) == FIELDS
    assert found["id"] == ws and found["source"] == "process tree"
    assert found["memory_bytes"] > 0 and found["pids"] >= 1
