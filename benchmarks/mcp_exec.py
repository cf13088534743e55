"""MCP `workspace_exec` round trip through the official `mcp` client over stdio: p50 < 15 ms.

Starts `roost mcp serve --profile core` (the venv's script) with a temporary
ROOST_HOME, creates a workspace with the `workspace_create` tool, then times
`workspace_exec(workspace=..., command="true")` calls.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import BACKEND, ENV, Result, Settings, measured, roost_script, summarize, temp_home

DESCRIPTION = "MCP workspace_exec(command='true') round trip over stdio, mock backend"
WORKSPACE_ID = re.compile(r"\bws-[0-9a-f]{10}\b")
SESSION_TIMEOUT = 120.0


def _payload(result: Any) -> str:
    """Everything a tool result says, as text: structured content first, then text blocks."""
    parts = []
    if getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content))
    for block in getattr(result, "content", []) or []:
        text = getattr(block, "text", None)
        if text:
            parts.append(text)
    return "\n".join(parts)


def _check(result: Any, tool: str) -> str:
    payload = _payload(result)
    if getattr(result, "is_error", False):
        raise RuntimeError(f"tool {tool} failed: {payload[:500]}")
    return payload


async def _measure(home: Path, settings: Settings) -> list[float]:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=str(roost_script()),
        args=["mcp", "serve", "--profile", "core"],
        env={"ROOST_HOME": str(home), "ROOST_BACKEND": BACKEND},
        cwd=str(home),
    )
    samples: list[float] = []
    with anyio.fail_after(SESSION_TIMEOUT):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            created = _check(await session.call_tool("workspace_create", {"env": ENV}), "workspace_create")
            match = WORKSPACE_ID.search(created)
            if match is None:
                raise RuntimeError(f"workspace_create returned no workspace id: {created[:500]}")
            args = {"workspace": match.group(0), "command": "true"}
            for _ in range(settings.n(10, 3)):
                _check(await session.call_tool("workspace_exec", args), "workspace_exec")
            for _ in range(settings.n(100, 20)):
                start = time.perf_counter()
                result = await session.call_tool("workspace_exec", args)
                samples.append((time.perf_counter() - start) * 1000)
                _check(result, "workspace_exec")
    return samples


def run(settings: Settings) -> Result:
    import anyio

    with temp_home() as home:
        samples = anyio.run(_measure, home, settings)
    return measured(DESCRIPTION, "ms", summarize(samples), "p50", "<", 15.0, calls=len(samples))
