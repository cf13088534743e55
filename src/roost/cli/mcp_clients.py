"""What each popular MCP client reads: where its project config file is, its format, and roost's entry in it.

`roost mcp config CLIENT` prints the entry; with `--install` the CLI merges it
into the client's project file (`merged`), keeping every other server and
setting there. The JSON clients keep their servers under one key
(`mcpServers`, or `servers` for VS Code); Codex keeps TOML tables
`[mcp_servers.NAME]`, rewritten here as text (the standard library reads TOML
but does not write it), and the result is read back to check it.

Imports: errors and the standard library only.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import Any

from roost.errors import InvalidArgument

SERVER_NAME = "roost"


@dataclass(frozen=True)
class McpClient:
    """A client: its project config file (relative to the project), where it reads it from, and its format."""

    name: str
    project_file: str
    user_file: str
    servers_key: str
    toml: bool = False
    typed: bool = False  # the entry says "type": "stdio"


CLIENTS: dict[str, McpClient] = {
    "claude-code": McpClient(
        "claude-code", ".mcp.json", "~/.claude.json (top-level mcpServers)", "mcpServers", typed=True
    ),
    "cursor": McpClient("cursor", ".cursor/mcp.json", "~/.cursor/mcp.json", "mcpServers"),
    "vscode": McpClient("vscode", ".vscode/mcp.json", "mcp.json in your VS Code user profile", "servers", typed=True),
    "codex": McpClient("codex", ".codex/config.toml", "~/.codex/config.toml", "mcp_servers", toml=True),
}


def server_entry(client: McpClient, argv: list[str]) -> dict[str, Any]:
    """roost's server entry for `client`: the program and its arguments."""
    return {**({"type": "stdio"} if client.typed else {}), "command": argv[0], "args": argv[1:]}


def snippet(client: McpClient, argv: list[str]) -> str:
    """The config text that declares roost's server, as the client's file would hold it alone."""
    return merged(client, "", argv)


def merged(client: McpClient, existing: str, argv: list[str]) -> str:
    """`existing` (the client's file, "" when there is none) with roost's entry put in or replaced.

    Raises:
        InvalidArgument: config_unreadable when the file is not valid JSON (or TOML) of the expected shape.
    """
    entry = server_entry(client, argv)
    if client.toml:
        return _merged_toml(client, existing, entry)
    try:
        document = json.loads(existing) if existing.strip() else {}
    except json.JSONDecodeError as exc:
        raise _unreadable(client, str(exc)) from None
    servers = document.get(client.servers_key, {}) if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise _unreadable(client, f"its {client.servers_key!r} is not an object")
    document[client.servers_key] = {**servers, SERVER_NAME: entry}
    return json.dumps(document, indent=2) + "\n"


def _merged_toml(client: McpClient, existing: str, entry: dict[str, Any]) -> str:
    try:
        tomllib.loads(existing)
    except tomllib.TOMLDecodeError as exc:
        raise _unreadable(client, str(exc)) from None
    header = f"[{client.servers_key}.{SERVER_NAME}]"
    kept: list[str] = []
    inside = False
    for line in existing.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):  # a table header ends roost's table (and its sub-tables belong to it)
            inside = stripped == header or stripped.startswith(f"[{client.servers_key}.{SERVER_NAME}.")
        if not inside:
            kept.append(line)
    body = "\n".join(kept).rstrip("\n")
    table = "\n".join([header, f"command = {json.dumps(entry['command'])}", f"args = {json.dumps(entry['args'])}"])
    text = f"{body}\n\n{table}\n" if body else f"{table}\n"
    parsed = tomllib.loads(text)  # what was written reads back as the entry
    assert parsed[client.servers_key][SERVER_NAME] == entry, text
    return text


def _unreadable(client: McpClient, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"cannot read {client.project_file} to add roost to it: {why}",
        code="config_unreadable",
        hint="fix the file, or print the entry and add it yourself",
    )


def check_client(name: str) -> McpClient:
    """Raises: InvalidArgument: an unknown client."""
    if name not in CLIENTS:
        raise InvalidArgument(f"unknown MCP client {name!r}", hint=f"use one of: {', '.join(CLIENTS)}")
    return CLIENTS[name]
