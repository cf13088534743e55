"""`roost mcp config CLIENT`: the printed entry starts roost's server, and --install merges it after a diff."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from cli_helpers import RoostCli
from mcp import ClientSession, StdioServerParameters, stdio_client

pytestmark = pytest.mark.e2e


def test_the_printed_entry_starts_a_server_with_the_options_given(
    roost: RoostCli, tmp_path: Path, errlog: TextIO
) -> None:
    entry = roost.json("mcp", "config", "claude-code", "--profile", "core")["entry"]
    assert entry["type"] == "stdio" and Path(entry["command"]).is_absolute()

    async def tools() -> set[str]:
        with anyio.fail_after(30):
            return await _listed(entry, roost.home, tmp_path, errlog)

    names = anyio.run(tools)
    assert "workspace_exec" in names and not any(name.startswith("shell_") for name in names)


async def _listed(entry: dict[str, Any], home: Path, cwd: Path, errlog: TextIO) -> set[str]:
    """The tools of the server a client starts from `entry`."""
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env={"ROOST_HOME": str(home), "ROOST_BACKEND": "mock"},
        cwd=str(cwd),
    )
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return {tool.name for tool in (await session.list_tools()).tools}


def test_install_shows_the_diff_and_writes_only_with_yes(roost: RoostCli, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".cursor").mkdir(parents=True)
    config = project / ".cursor" / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}}))
    config.chmod(0o600)

    refused = roost("mcp", "config", "cursor", "--install", "--dir", str(project), check_rc=2)
    assert '+    "roost": {' in refused.stdout and "--yes" in refused.stderr
    assert json.loads(config.read_text()) == {"mcpServers": {"other": {"command": "x"}}}

    written = roost("mcp", "config", "cursor", "--install", "--yes", "--dir", str(project), check_rc=0)
    assert f"wrote {config}" in written.stdout
    servers = json.loads(config.read_text())["mcpServers"]
    assert set(servers) == {"other", "roost"} and config.stat().st_mode & 0o777 == 0o600
    again = roost("mcp", "config", "cursor", "--install", "--dir", str(project), check_rc=0)
    assert "already starts roost" in again.stdout


def test_codex_gets_a_toml_table(roost: RoostCli) -> None:
    printed = roost("mcp", "config", "codex", "--allow-root", str(roost.home.parent), check_rc=0).stdout
    table = tomllib.loads(printed)["mcp_servers"]["roost"]
    assert table["args"][-2:] == ["--allow-root", str(roost.home.parent)]
