"""The options of `roost mcp serve`, defined once for the two programs that take them.

`roost mcp serve` (the CLI) and `python -m roost.mcp` (the MCP server on its
own) parse one grammar (`add_serve_arguments`) into one `ServeOptions`, which
refuses bad values the same way for both. The CLI checks the options itself,
so a bad one is reported as every CLI error is (`--json` included), and then
becomes the MCP server program, handing it the options as a command line
(`ServeOptions.argv`): the two front ends never import each other.

Imports: arguments and secrets.model (when validating), errors and the standard library only,
so that building the CLI's grammar stays cheap.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from roost.errors import InvalidArgument

__all__ = ["LOOPBACK_HOSTS", "PROFILE_NAMES", "TRANSPORTS", "ServeOptions", "add_serve_arguments"]

# The tool sets a server can expose; `roost.mcp.server.PROFILES` says which tools each holds.
PROFILE_NAMES = ("run", "core", "full")
TRANSPORTS = ("stdio", "http")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


DEFAULT_REAP_INTERVAL_S = 30.0
MIN_REAP_INTERVAL_S, MAX_REAP_INTERVAL_S = 0.1, 3600.0


@dataclass(frozen=True)
class ServeOptions:
    """How to run the server.

    Attributes:
        profile: `run` (one-shot `run` only), `core` (workspaces, exec, files, diff, snapshots) or `full` (core plus shells and services).
        transport: `stdio` or `http` (streamable HTTP on host:port, path /mcp).
        host: loopback only: 127.0.0.1, ::1 or localhost.
        allow_roots: host directories `seed_path`, `source` and `output_path` may name
            (default: none, so every host path is refused).
        home: roost state directory (default `$ROOST_HOME` or ~/.local/share/roost).
        backend: workspace backend (default: best available, or `$ROOST_BACKEND`).
        token_file: http: the file holding the bearer token (made, 0600, if missing);
            default: a new token each start in `<home>/mcp/http-<port>.token`.
        allow_secrets: secrets of the host's store a model may attach and use (by name; it never
            sees a value); default none.
        reap_interval_s: how often the running server reaps workspaces whose TTL has passed.
    """

    profile: str = "full"
    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8765
    allow_roots: tuple[str, ...] = ()
    home: str | None = None
    backend: str | None = None
    token_file: str | None = None
    allow_secrets: tuple[str, ...] = ()
    reap_interval_s: float = DEFAULT_REAP_INTERVAL_S

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ServeOptions:
        """The options a parser made with `add_serve_arguments` read (`home` from wherever that parser keeps it)."""
        return cls(
            profile=args.profile,
            transport=args.transport,
            host=args.host,
            port=args.port,
            allow_roots=tuple(args.allow_roots or ()),
            home=getattr(args, "home", None),
            backend=args.backend,
            token_file=args.token_file,
            allow_secrets=tuple(args.allow_secrets or ()),
            reap_interval_s=args.reap_interval,
        )

    def validate(self) -> None:
        """Raises:
        InvalidArgument: an unknown profile or transport, a non-loopback host, or a bad port.
        """
        from roost import arguments

        if self.profile not in PROFILE_NAMES:
            raise InvalidArgument(f"unknown profile {self.profile!r}", hint=f"use one of: {', '.join(PROFILE_NAMES)}")
        if self.transport not in TRANSPORTS:
            raise InvalidArgument(f"unknown transport {self.transport!r}", hint=f"use one of: {', '.join(TRANSPORTS)}")
        if self.host not in LOOPBACK_HOSTS:
            raise InvalidArgument(
                f"refusing to listen on {self.host!r}: the MCP server runs commands for whoever connects",
                hint="use --host 127.0.0.1 (or ::1, localhost) and tunnel if you need remote access",
            )
        arguments.port(self.port)
        if self.token_file is not None and self.transport != "http":
            raise InvalidArgument("--token-file is for --transport http", hint="drop it, or serve over http")
        from roost.secrets.model import check_name

        for name in self.allow_secrets:
            check_name(name)
        if not MIN_REAP_INTERVAL_S <= self.reap_interval_s <= MAX_REAP_INTERVAL_S:
            raise InvalidArgument(
                f"--reap-interval {self.reap_interval_s:g} is out of range",
                hint=f"give seconds from {MIN_REAP_INTERVAL_S:g} to {MAX_REAP_INTERVAL_S:g}",
            )

    def argv(self) -> list[str]:
        """These options as the command line `add_serve_arguments` (plus `--home`) reads back."""
        line = ["--profile", self.profile, "--transport", self.transport, "--host", self.host, "--port", str(self.port)]
        for root in self.allow_roots:
            line += ["--allow-root", root]
        for name in self.allow_secrets:
            line += ["--allow-secret", name]
        if self.reap_interval_s != DEFAULT_REAP_INTERVAL_S:
            line += ["--reap-interval", f"{self.reap_interval_s:g}"]
        for flag, value in (("--token-file", self.token_file), ("--home", self.home), ("--backend", self.backend)):
            if value is not None:
                line += [flag, value]
        return line

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options, for `roost mcp serve` and `python -m roost.mcp` alike (`--home` is each one's own)."""
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="full", help="tool set to expose (default: full)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="stdio", help="stdio (default) or streamable http")
    parser.add_argument("--host", default="127.0.0.1", help="http: loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="http: port to bind (default 8765)")
    parser.add_argument(
        "--allow-root",
        dest="allow_roots",
        action="append",
        metavar="DIR",
        help="host directory tools may read seeds and sync sources from and export into (repeatable; "
        "default: none, so tools refuse host paths; never /, your home, ROOST_HOME or the image cache)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="http: file holding the bearer token clients must send (created 0600 if missing; "
        "default: a new token each start, in $ROOST_HOME/mcp/http-PORT.token, shown once)",
    )
    parser.add_argument(
        "--backend", default=None, help="backend for workspaces created through MCP (default: best available)"
    )
    parser.add_argument(
        "--allow-secret",
        dest="allow_secrets",
        action="append",
        metavar="NAME",
        help="a secret of the host's store that models may attach and use, never see (repeatable; default: none)",
    )
    parser.add_argument(
        "--reap-interval",
        type=float,
        default=DEFAULT_REAP_INTERVAL_S,
        metavar="S",
        help=f"seconds between reaps of workspaces whose TTL has passed (default {DEFAULT_REAP_INTERVAL_S:g})",
    )
