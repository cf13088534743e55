"""`python -m roost.mcp`: parse `roost mcp serve`'s options and run the server.

`roost mcp serve` checks the same options (see `roost.serve_options`) and
then becomes this program. Errors in the options go to stderr as
`{"error": {"code", "message", "hint"}}` with exit status 2; stdout belongs
to the MCP protocol.

Imports `roost.errors`, `roost.serve_options`, `roost.mcp.server` and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from roost.errors import RoostError
from roost.mcp.server import serve
from roost.serve_options import ServeOptions, add_serve_arguments


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roost mcp serve", description="Serve roost's tools over MCP.")
    add_serve_arguments(p)
    p.add_argument("--home", default=None, help="roost state directory (default $ROOST_HOME)")
    return p


def options_from_args(argv: Sequence[str] | None = None) -> ServeOptions:
    return ServeOptions.from_arguments(parser().parse_args(argv))


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
