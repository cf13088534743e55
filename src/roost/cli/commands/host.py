"""`roost doctor` and `roost mcp serve`.

`roost mcp serve` checks its options here, so a bad one is reported as every
CLI error is, and then replaces this process with the MCP server program
(`python -m roost.mcp`), the same pid on the same stdin and stdout, which is
what an MCP client that spawned it talks to. The CLI runs that program; it
never imports it.

Imports: cli siblings, errors, serve_options and the standard library.
"""

from __future__ import annotations

import argparse
import os
import sys

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, shown
from roost.errors import RoostError
from roost.serve_options import ServeOptions

MCP_SERVER_MODULE = "roost.mcp"


def doctor(args: argparse.Namespace) -> int:
    report = sdk(args).doctor()
    if args.json:
        emit_json(report.to_dict())
        return 0
    print(f"roost {report.version}")
    print(f"state directory: {report.home}")
    print(f"default backend: {report.default_backend}")
    print("backends:")
    for name, check in report.backends.items():
        print(f"  {'ok ' if check.ok else 'no '} {name:<12} {shown(check.detail)}")
    print("checks:")
    for check in report.checks:
        print(f"  {'ok ' if check.ok else 'no '} {check.name:<12} {shown(check.detail)}")
    for name, protections in report.protections.items():
        print(f"protections of a new {name} workspace:")
        for protection in protections:
            print(f"  {'on ' if protection.active else 'OFF'} {protection.name:<15} {shown(protection.detail)}")
    return 0


def mcp_serve(args: argparse.Namespace) -> int:
    """Become the MCP server with these options; returns only when they are refused.

    Raises:
        InvalidArgument: a bad option (see `ServeOptions.validate`).
        RoostError: mcp_start_failed when the server program cannot be started.
    """
    options = ServeOptions.from_arguments(args)
    options.validate()
    program = [sys.executable, *interpreter_flags(), "-m", MCP_SERVER_MODULE, *options.argv()]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, program)
    except OSError as exc:
        raise RoostError(
            f"cannot start the MCP server ({sys.executable}): {exc.strerror}",
            code="mcp_start_failed",
            hint=f"run `{sys.executable or 'python3'} -m {MCP_SERVER_MODULE}` with the same options",
        ) from None


def interpreter_flags() -> list[str]:
    """This interpreter's import isolation, for the server it becomes.

    `-P` at least: `-m` would otherwise put the client's working directory
    (a project, which may hold a `mcp/` or `roost/` of its own) first on the
    import path.
    """
    if sys.flags.isolated:
        return ["-I"]
    return [*(["-E"] if sys.flags.ignore_environment else []), *(["-s"] if sys.flags.no_user_site else []), "-P"]
