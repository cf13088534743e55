"""Merging roost's server into an MCP client's config file keeps everything else there."""

from __future__ import annotations

import json
import tomllib

import pytest

from roost.cli.mcp_clients import CLIENTS, merged, snippet
from roost.errors import InvalidArgument

ARGV = ["/opt/roost/bin/roost", "mcp", "serve", "--profile", "core"]


@pytest.mark.parametrize("name", ["claude-code", "cursor", "vscode"])
def test_a_json_config_keeps_other_servers_and_settings_and_replaces_an_old_roost(name: str) -> None:
    client = CLIENTS[name]
    key = client.servers_key
    existing = json.dumps({"theme": "dark", key: {"other": {"command": "x"}, "roost": {"command": "old"}}})
    document = json.loads(merged(client, existing, ARGV))
    assert document["theme"] == "dark"
    assert document[key]["other"] == {"command": "x"}
    assert document[key]["roost"]["command"] == ARGV[0] and document[key]["roost"]["args"] == ARGV[1:]
    assert ("type" in document[key]["roost"]) is client.typed


def test_the_codex_table_replaces_its_old_self_and_sub_tables_and_keeps_the_rest() -> None:
    existing = """model = "o4"

[mcp_servers.roost]
command = "old"
args = []

[mcp_servers.roost.env]
X = "1"

[mcp_servers.other]
command = "y"
"""
    text = merged(CLIENTS["codex"], existing, ARGV)
    parsed = tomllib.loads(text)
    assert parsed["model"] == "o4"
    assert parsed["mcp_servers"]["other"] == {"command": "y"}
    assert parsed["mcp_servers"]["roost"] == {"command": ARGV[0], "args": ARGV[1:]}
    assert tomllib.loads(snippet(CLIENTS["codex"], ARGV))["mcp_servers"]["roost"]["args"] == ARGV[1:]


@pytest.mark.parametrize(
    ("name", "existing"), [("cursor", "{not json"), ("vscode", '{"servers": []}'), ("codex", "[x")]
)
def test_a_file_that_cannot_be_read_is_refused_not_overwritten(name: str, existing: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        merged(CLIENTS[name], existing, ARGV)
    assert caught.value.code == "config_unreadable"
