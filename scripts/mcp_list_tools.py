"""List the tools of an MCP server started over stdio, with the official `mcp` client.

    python scripts/mcp_list_tools.py [--require NAME]... [--timeout S] [-- COMMAND ARGS...]

The default server is `roost mcp serve --profile core`, with `roost` taken
from the same venv as this interpreter when it is there (so `make dist-check`
lists the tools of the installed wheel, not of the source tree). Prints one
tool name per line; exits 1 when a `--require`d tool is missing or the
server fails, 2 on a usage error.

Only the standard library and `mcp` are used: this runs in a bare venv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def _default_command() -> list[str]:
    beside = Path(sys.executable).parent / "roost"
    roost = str(beside) if beside.exists() else (shutil.which("roost") or "roost")
    return [roost, "mcp", "serve", "--profile", "core"]


def _server_env() -> dict[str, str]:
    # stdio_client passes only a few "safe" variables on; roost's own settings must be explicit.
    return {k: v for k, v in os.environ.items() if k.startswith("ROOST_")}


async def list_tools(command: list[str], timeout: float) -> list[str]:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=_server_env())
    with anyio.fail_after(timeout):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.list_tools()
            return [tool.name for tool in result.tools]


def describe(exc: BaseException) -> str:
    """One line for an error, looking inside the exception groups anyio raises."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--require", action="append", default=[], metavar="NAME", help="fail unless this tool is listed"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole exchange (default 60)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="server command (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    command = command or _default_command()

    import anyio

    try:
        names = anyio.run(list_tools, command, args.timeout)
    except TimeoutError:
        print(f"mcp_list_tools: no answer from {' '.join(command)} within {args.timeout:g}s", file=sys.stderr)
        return 1
    except Exception as exc:  # report any client/server failure as one line, not a traceback
        print(f"mcp_list_tools: {' '.join(command)}: {describe(exc)}", file=sys.stderr)
        return 1
    for name in names:
        print(name)
    missing = [name for name in args.require if name not in names]
    if missing:
        print(f"mcp_list_tools: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
