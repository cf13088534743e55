"""`python -m roost.mcp`: parse `roost mcp serve`'s options and run the server.

Errors in the options go to stderr as `{"error": {"code", "message", "hint"}}`
with exit status 2; stdout belongs to the MCP protocol.

Imports `roost.errors`, `roost.mcp.server` and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from roost.errors import RoostError
from roost.mcp.server import PROFILES, TRANSPORTS, ServeOptions, serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roost mcp serve", description="Serve roost's tools over MCP.")
    p.add_argument("--profile", choices=tuple(PROFILES), default="full", help="tool set to expose (default: full)")
    p.add_argument("--transport", choices=TRANSPORTS, default="stdio", help="stdio (default) or streamable http")
    p.add_argument("--host", default="127.0.0.1", help="http: loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="http: port to bind (default 8765)")
    p.add_argument(
        "--allow-root",
        dest="allow_roots",
        action="append",
        metavar="DIR",
        help="host directory tools may read seeds and sync sources from and export into (repeatable; "
        "default: none, so tools refuse host paths; never /, your home, ROOST_HOME or the image cache)",
    )
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="http: file holding the bearer token clients must send (created 0600 if missing; "
        "default: a new token each start, in $ROOST_HOME/mcp/http-PORT.token)",
    )
    p.add_argument("--home", default=None, help="roost state directory (default $ROOST_HOME)")
    p.add_argument("--backend", default=None, help="workspace backend (default: best available or $ROOST_BACKEND)")
    return p


def options_from_args(argv: Sequence[str] | None = None) -> ServeOptions:
    args = parser().parse_args(argv)
    return ServeOptions(
        profile=args.profile,
        transport=args.transport,
        host=args.host,
        port=args.port,
        allow_roots=tuple(args.allow_roots or ()),
        home=args.home,
        backend=args.backend,
        token_file=args.token_file,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        serve(options_from_args(argv))
    except RoostError as exc:
        print(json.dumps({"error": exc.to_dict()}), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
