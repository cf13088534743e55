"""`roost ui`: check the options, then become the dashboard's server (`python -m roost.ui`).

As for `roost mcp serve`, the CLI never imports the other front end: it replaces this
process with it, same pid, same stdout (where the URL with the token is printed).

Imports: cli siblings, errors and the standard library.
"""

from __future__ import annotations

import argparse
import os
import sys

from roost.cli.commands.host import interpreter_flags
from roost.errors import InvalidArgument, RoostError

UI_SERVER_MODULE = "roost.ui"


def ui(args: argparse.Namespace) -> int:
    """Serve the dashboard; returns only when the options are refused.

    Raises:
        InvalidArgument: a port outside 0-65535.
        RoostError: ui_start_failed when the server program cannot be started.
    """
    if not 0 <= args.port <= 65535:
        raise InvalidArgument(f"port {args.port} is out of range", hint="give a port from 1 to 65535, or 0 for any")
    options = ["--port", str(args.port)]
    options += ["--no-open"] if args.no_open else []
    options += ["--json"] if args.json else []
    options += ["--home", args.home] if args.home else []
    options += ["--backend", args.backend] if args.backend else []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *interpreter_flags(), "-m", UI_SERVER_MODULE, *options])
    except OSError as exc:
        raise RoostError(
            f"cannot start the dashboard ({sys.executable}): {exc.strerror}",
            code="ui_start_failed",
            hint=f"run `{sys.executable or 'python3'} -m {UI_SERVER_MODULE}` with the same options",
        ) from None
