"""`roost workspace logs`: the exec history, one exec's saved output, or `--follow`.

Imports: cli siblings, models and the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, human_size, table, warn
from roost.client import Workspace
from roost.models import ExecRecord

_HEADERS = ["EXEC", "STARTED", "EXIT", "TIME", "OUTPUT", "COMMAND"]


def _row(e: ExecRecord) -> list[str]:
    outcome = e.error or (
        "timeout" if e.timed_out else (str(e.exit_code) if e.exit_code is not None else str(e.signal))
    )
    return [
        str(e.exec_id),
        e.started_at[:19].replace("T", " "),
        outcome,
        f"{e.duration_ms:.0f} ms",
        human_size(e.stdout_bytes + e.stderr_bytes),
        e.command[:60],
    ]


def logs(args: argparse.Namespace) -> int:
    workspace = sdk(args).workspace(args.workspace)
    if args.exec_id is not None:
        return _output(workspace, args)
    if args.follow:
        return _follow(workspace, args)
    entries = workspace.logs(args.limit)
    if args.json:
        emit_json({"workspace": workspace.id, "execs": [e.to_dict() for e in entries]})
    elif not entries:
        print("no execs yet")
    else:
        print(table([_row(e) for e in entries], _HEADERS))
    return 0


def _output(workspace: Workspace, args: argparse.Namespace) -> int:
    window = workspace.exec_output(args.exec_id, args.stream, offset=args.offset, max_bytes=args.max_bytes)
    if args.json:
        emit_json(window.to_dict())
    else:
        sys.stdout.write(window.data)
        if not window.eof:
            warn(f"more output follows: continue with --offset {window.offset + window.length}")
    return 0


def _follow(workspace: Workspace, args: argparse.Namespace) -> int:
    """Print the history, then each exec as it finishes (one JSON document per line with --json) until Ctrl-C."""
    if not args.json:
        print("\t".join(_HEADERS), flush=True)

    def show(entry: ExecRecord) -> None:
        line = json.dumps(entry.to_dict(), sort_keys=True) if args.json else "\t".join(_row(entry))
        print(line, flush=True)

    stop = threading.Event()
    try:
        workspace.follow_logs(show, stop, limit=args.limit)
    except KeyboardInterrupt:
        stop.set()
    return 0
