"""`python -m roost.ui [--port N] [--no-open] [--json] [--home DIR] [--backend B]`: the program `roost ui` becomes.

Imports: errors, the dashboard's server and the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from roost.errors import InvalidArgument, RoostError
from roost.ui.server import UiOptions, serve


def arguments(argv: list[str]) -> UiOptions:
    parser = argparse.ArgumentParser(prog="roost ui", description="serve the dashboard on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--no-open", action="store_true", help="print the URL, do not open a browser")
    parser.add_argument("--json", action="store_true", help="print the URL as one JSON line")
    parser.add_argument("--home", type=Path, help="state directory")
    parser.add_argument("--backend", help="backend for new workspaces")
    args = parser.parse_args(argv)
    return UiOptions(
        port=args.port, open_browser=not args.no_open, json=args.json, home=args.home, backend=args.backend
    )


def main(argv: list[str] | None = None) -> int:
    options = arguments(sys.argv[1:] if argv is None else argv)
    try:
        serve(options)
    except RoostError as exc:  # said as every CLI error is: on stderr, JSON with --json
        if options.json:
            sys.stderr.write(json.dumps({"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}) + "\n")
        else:
            sys.stderr.write(f"roost: error: {exc.message} [{exc.code}]\nhint: {exc.hint}\n")
        return 2 if isinstance(exc, InvalidArgument) else 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
