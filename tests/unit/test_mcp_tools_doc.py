"""docs/mcp.md's profile table names every tool each profile serves, and counts them right."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from roost.client import Roost
from roost.mcp.server import build_server
from roost.serve_options import PROFILE_NAMES, ServeOptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"
ROW = re.compile(r"^\| `(\w+)`(?: \(default)?,? ?\(?(\d+) tools?\)? \| (.*) \|$")


def _documented() -> dict[str, tuple[int, set[str]]]:
    """profile -> (the count its row states, the tool names it lists; `full` adds core's)."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), set(re.findall(r"`([a-z_]+)`", match.group(3))))
    count, names = rows["full"]
    rows["full"] = (count, names | rows["core"][1])
    return rows


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_profile_table_lists_and_counts_the_tools_the_server_has(tmp_path: Path, profile: str) -> None:
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        served = {tool.name for tool in asyncio.run(build_server(ServeOptions(profile=profile), roost).list_tools())}
    count, listed = _documented()[profile]
    assert listed - {"core"} == served  # the full row names the core profile it builds on
    assert count == len(served)
