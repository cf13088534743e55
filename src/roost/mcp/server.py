"""Build and run roost's MCP server: options, profiles (which tool groups to register) and transports.

`roost mcp serve` and `python -m roost.mcp` call `serve(ServeOptions(...))`;
tests call `build_server` and talk to it in process. One `Roost` instance
serves every call: it is safe for concurrent calls, and each tool runs its
blocking work in a worker thread (see `roost.mcp.results`).

Imports `roost.client`, `roost.errors`, `roost.arguments`, the MCP layer's siblings and the `mcp` server.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from mcp.server import MCPServer

from roost import __version__, arguments
from roost.client import Roost
from roost.errors import InvalidArgument
from roost.mcp.change_tools import register_change_tools
from roost.mcp.exec_tools import register_exec_tools
from roost.mcp.file_tools import register_file_tools
from roost.mcp.host_paths import AllowedRoots
from roost.mcp.results import RoostMCPServer
from roost.mcp.run_tools import register_run_tools
from roost.mcp.service_tools import register_service_tools
from roost.mcp.shell_tools import register_shell_tools
from roost.mcp.toolkit import ToolContext, ToolGroup
from roost.mcp.workspace_tools import register_workspace_tools

__all__ = ["PROFILES", "TRANSPORTS", "ServeOptions", "build_server", "serve"]

_CORE: tuple[ToolGroup, ...] = (
    register_run_tools,
    register_workspace_tools,
    register_exec_tools,
    register_file_tools,
    register_change_tools,
)

# A profile is the tool groups it registers; a new feature adds its group here.
PROFILES: dict[str, tuple[ToolGroup, ...]] = {
    "run": (register_run_tools,),
    "core": _CORE,
    "full": (*_CORE, register_shell_tools, register_service_tools),
}
TRANSPORTS = ("stdio", "http")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

INSTRUCTIONS = """\
roost gives you persistent, isolated Linux workspaces. Create one with workspace_create, \
then run commands (workspace_exec) and edit files (file_read, file_write, patch_apply) in it \
across as many calls as you need; delete it with workspace_delete when done. For a single \
throwaway command use run. In the full profile, shell_open gives you a bash that keeps its \
state between calls (type with shell_write, read with shell_read), and service_start runs \
servers in the background until a readiness probe passes. Long outputs are cut to head and tail with a marker saying how to \
read the rest. Failures come back as tool errors: {"error": {"code", "message", "hint"}}."""


def _cwd() -> tuple[str, ...]:
    return (os.getcwd(),)


@dataclass(frozen=True)
class ServeOptions:
    """How to run the server.

    Attributes:
        profile: `run` (one-shot `run` only), `core` (workspaces, exec, files, diff, snapshots) or `full` (core plus shells and services).
        transport: `stdio` or `http` (streamable HTTP on host:port, path /mcp).
        host: loopback only: 127.0.0.1, ::1 or localhost.
        allow_roots: host directories `seed_path` and `source` may name (default: the cwd).
        home: roost state directory (default `$ROOST_HOME` or ~/.local/share/roost).
        backend: workspace backend (default: best available, or `$ROOST_BACKEND`).
    """

    profile: str = "full"
    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8765
    allow_roots: tuple[str, ...] = field(default_factory=_cwd)
    home: str | None = None
    backend: str | None = None

    def validate(self) -> None:
        """Raises:
        InvalidArgument: an unknown profile or transport, a non-loopback host, or a bad port.
        """
        if self.profile not in PROFILES:
            raise InvalidArgument(f"unknown profile {self.profile!r}", hint=f"use one of: {', '.join(PROFILES)}")
        if self.transport not in TRANSPORTS:
            raise InvalidArgument(f"unknown transport {self.transport!r}", hint=f"use one of: {', '.join(TRANSPORTS)}")
        if self.host not in LOOPBACK_HOSTS:
            raise InvalidArgument(
                f"refusing to listen on {self.host!r}: the MCP server runs commands for whoever connects",
                hint="use --host 127.0.0.1 (or ::1, localhost) and tunnel if you need remote access",
            )
        arguments.port(self.port)


def build_server(options: ServeOptions, roost: Roost | None = None) -> MCPServer:
    """An MCP server with the tools of `options.profile`, all sharing `roost` (a new `Roost` if None).

    Raises:
        InvalidArgument: bad options or an allowed root that is not a directory.
    """
    options.validate()
    roots = AllowedRoots(options.allow_roots)
    if roost is None:
        roost = Roost(home=options.home, backend=options.backend)
    server = RoostMCPServer(
        "roost", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING", warn_on_duplicate_tools=True
    )
    context = ToolContext(roost=roost, roots=roots)
    for register in PROFILES[options.profile]:
        register(server, context)
    return server


def serve(options: ServeOptions) -> None:
    """Serve until the client goes away (stdio) or the process is interrupted (http).

    Raises:
        InvalidArgument: bad options (checked before anything starts).
    """
    options.validate()
    roost = Roost(home=options.home, backend=options.backend)
    try:
        server = build_server(options, roost)
        if options.transport == "stdio":
            server.run("stdio")
        else:
            shown = f"[{options.host}]" if ":" in options.host else options.host
            print(f"roost MCP server ({options.profile}) on http://{shown}:{options.port}/mcp", file=sys.stderr)
            server.run("streamable-http", host=options.host, port=options.port)
    finally:
        roost.close()
