"""Drive roost's MCP server the way an agent's MCP client does: over stdio, on the mock backend.

    uv run python examples/mcp_client.py

Starts `python -m roost.mcp` (the same server as `roost mcp serve`) as a
subprocess with the official `mcp` client, lists its tools, creates a
workspace, runs `echo hello` in it and deletes it. State goes to a temporary
ROOST_HOME, so the example leaves nothing behind. The mock backend isolates
nothing; it exists for development.
"""

from __future__ import annotations

import json
import sys
import tempfile
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        # Tool errors carry {"error": {"code", "message", "hint"}}.
        raise SystemExit(f"{tool} failed: {text_of(result)}")
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="roost-mcp-example-") as home:
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "roost.mcp", "--profile", "core"],
            env={"ROOST_HOME": home, "ROOST_BACKEND": "mock"},
        )
        with anyio.fail_after(60):
            async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
                init = await session.initialize()
                print(f"connected to {init.server_info.name} {init.server_info.version}")

                tools = (await session.list_tools()).tools
                print("tools:", ", ".join(sorted(tool.name for tool in tools)))

                workspace = await call(session, "workspace_create", name="mcp-example")
                print(f"created {workspace['id']} on {workspace['backend']} (isolated={workspace['isolated']})")

                result = await call(session, "workspace_exec", workspace="mcp-example", command="echo hello")
                print(f"exit {result['exit_code']}: {result['stdout'].strip()}")

                missing = await session.call_tool("workspace_status", {"workspace": "no-such-workspace"})
                print("a failure is a tool error:", json.loads(text_of(missing))["error"]["code"])

                print("deleted:", await call(session, "workspace_delete", workspace="mcp-example"))
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
