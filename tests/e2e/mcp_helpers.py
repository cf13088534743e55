"""Driving the MCP server over stdio with the real MCP client, for the e2e MCP tests.

The server runs as `python -m roost.mcp` (`SERVER_PROGRAM`), or as `roost mcp serve`
(`ROOST_MCP_SERVE`), which checks its options and becomes that program.

The fixtures these go with (`anyio_backend`, `mcp_home`, `errlog`) are in this folder's conftest.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

SERVER_PROGRAM = ("-m", "roost.mcp")
ROOST_MCP_SERVE = ("-m", "roost", "mcp", "serve")


@asynccontextmanager
async def mcp_session(
    profile: str,
    home: Path,
    errlog: TextIO,
    *,
    allow_root: Path | None = None,
    cwd: Path | None = None,
    program: Sequence[str] = SERVER_PROGRAM,
    allow_secrets: Sequence[str] = (),
    backend: str = "mock",
    extra_args: Sequence[str] = (),
) -> AsyncIterator[ClientSession]:
    """An initialized session with a server of `profile` on `backend` (mock), its state in `home`.

    With `allow_root`, the server may read and write under that directory (`--allow-root`). The server
    runs in `cwd`, by default the allowed root, or without one the directory that holds `home`.
    `program` is how Python starts it (`SERVER_PROGRAM` or `ROOST_MCP_SERVE`); `allow_secrets` the
    secrets it may use (`--allow-secret`); `extra_args` any other options of the server.
    """
    args = [*program, "--profile", profile]
    if allow_root is not None:
        args += ["--allow-root", str(allow_root)]
    for name in allow_secrets:
        args += ["--allow-secret", name]
    args += extra_args
    params = StdioServerParameters(
        command=sys.executable,
        args=args,
        env={"ROOST_HOME": str(home), "ROOST_BACKEND": backend},
        cwd=str(cwd or allow_root or home.parent),
    )
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def text_of(result: CallToolResult) -> str:
    """The text of a tool result's first content block, which must be text."""
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured content."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must fail cleanly (no traceback); return the `error` object from its text.

    The error must have a code, a message and a non-empty hint.
    """
    result = await session.call_tool(tool, arguments)
    assert result.is_error, text_of(result)
    assert "Traceback" not in text_of(result)
    error: dict[str, Any] = json.loads(text_of(result))["error"]
    assert set(error) >= {"code", "message", "hint"}, error
    assert error["hint"], error
    return error
