"""Build and run roost's MCP server: profiles (which tool groups to register) and transports.

While it runs, the server reaps workspaces whose TTL has passed (`roost.mcp.reaper`).

`python -m roost.mcp` calls `serve(ServeOptions(...))` (and `roost mcp serve`
becomes that program, see `roost.serve_options`); tests call `build_server`
and talk to it in process. One `Roost` instance
serves every call: it is safe for concurrent calls, and each tool runs its
blocking work in a worker thread (see `roost.mcp.results`).

Imports `roost.client`, `roost.config`, `roost.serve_options`, the MCP layer's siblings and the `mcp` server.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mcp.server import MCPServer

from roost._version import __version__
from roost.client import Roost
from roost.config import default_home, images_dir
from roost.mcp.change_tools import ChangeTools
from roost.mcp.env_tools import EnvTools
from roost.mcp.exec_tools import ExecTools
from roost.mcp.file_tools import FileTools
from roost.mcp.host_paths import AllowedRoots
from roost.mcp.http_auth import StaticTokenVerifier, auth_settings, server_token
from roost.mcp.network_tools import NetworkTools
from roost.mcp.reaper import TtlReaper
from roost.mcp.run_tools import RunTools
from roost.mcp.secret_tools import SecretTools
from roost.mcp.service_tools import ServiceTools
from roost.mcp.shell_tools import ShellTools
from roost.mcp.strict_server import RoostMCPServer
from roost.mcp.toolkit import ToolContext, ToolGroup
from roost.mcp.workspace_tools import WorkspaceTools
from roost.serve_options import ServeOptions

__all__ = ["PROFILES", "ServeOptions", "build_server", "serve"]

_CORE: tuple[type[ToolGroup], ...] = (RunTools, WorkspaceTools, ExecTools, FileTools, ChangeTools)

# A profile is the tool groups it registers (its name is one of serve_options.PROFILE_NAMES);
# a new feature adds its group here.
PROFILES: dict[str, tuple[type[ToolGroup], ...]] = {
    "run": (RunTools,),
    "core": _CORE,
    "full": (*_CORE, ShellTools, ServiceTools, NetworkTools, SecretTools, EnvTools),
}

INSTRUCTIONS = """\
roost gives you persistent, isolated Linux workspaces. Create one with workspace_create, \
then run commands (workspace_exec) and edit files (file_read, file_write, patch_apply) in it \
across as many calls as you need; delete it with workspace_delete when done. For a single \
throwaway command use run. In the full profile, shell_open gives you a bash that keeps its \
state between calls (type with shell_write, read with shell_read), and service_start runs \
servers in the background until a readiness probe passes; network_set gives a workspace \
outbound access (egress, or an allowlist of hosts) and publishes its ports on the host. Long outputs are cut to head and tail with a marker saying how to \
read the rest. Failures come back as tool errors: {"error": {"code", "message", "hint"}}; \
when one tool call fixes it, the hint names that call (e.g. workspace_restart for a workspace whose agent died)."""


def allowed_roots(options: ServeOptions, home: Path) -> AllowedRoots:
    """Raises: InvalidArgument: root_not_allowed (see `AllowedRoots`)."""
    return AllowedRoots(
        options.allow_roots, roost_home=str(home), image_cache=str(images_dir(home)), user_home=str(Path.home())
    )


def build_server(options: ServeOptions, roost: Roost | None = None, *, token: str | None = None) -> MCPServer:
    """An MCP server with the tools of `options.profile`, all sharing `roost` (a new `Roost` if None).

    With `token`, its HTTP app answers only requests bearing that token.

    Raises:
        InvalidArgument: bad options or a root that is not allowed.
    """
    options.validate()
    roots = allowed_roots(options, roost.home if roost is not None else _home(options))
    if roost is None:
        roost = Roost(home=options.home, backend=options.backend)
    context = ToolContext(roost=roost, roots=roots, allowed_secrets=frozenset(options.allow_secrets))
    reaper = TtlReaper(roost, options.reap_interval_s)
    return RoostMCPServer(
        "roost",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
        warn_on_duplicate_tools=True,
        token_verifier=None if token is None else StaticTokenVerifier(token),
        auth=None if token is None else auth_settings(options.url),
        tools=[tool for group in PROFILES[options.profile] for tool in group(context).tools()],
        lifespan=lambda _server: reaper.running(),
    )


def serve(options: ServeOptions) -> None:
    """Serve until the client goes away (stdio) or the process is interrupted (http).

    Raises:
        InvalidArgument: bad options (checked before anything starts).
    """
    options.validate()
    allowed_roots(options, _home(options))  # a root refused before anything else starts
    roost = Roost(home=options.home, backend=options.backend)
    try:
        if not options.allow_roots:
            say("roost MCP server: no --allow-root given, so tools refuse every host path")
        if options.transport == "stdio":
            build_server(options, roost).run("stdio")
            return
        token = server_token(options.token_file, roost.home, options.port)
        server = build_server(options, roost, token=token.value)
        say(f"roost MCP server ({options.profile}) on {options.url}/mcp")
        if token.generated:
            say(f"bearer token (shown once; also in {token.path}, mode 0600): {token.value}")
        else:
            say(f"bearer token: the one in {token.path}")
        say("clients send it as the header  Authorization: Bearer <token>")
        server.run("streamable-http", host=options.host, port=options.port)
    finally:
        roost.close()


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _home(options: ServeOptions) -> Path:
    return Path(options.home).expanduser() if options.home else default_home()
