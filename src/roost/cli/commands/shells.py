"""`roost workspace shell open|list|read|write|signal|resize|close|attach`.

Imports: cli siblings, errors, models and the standard library.
"""

from __future__ import annotations

import argparse
import sys

from roost.cli.commands.common import key_values, sdk
from roost.cli.output import emit_json, shown, table
from roost.errors import InvalidArgument
from roost.models import ShellInfo, ShellOutput


def _describe(shell: ShellInfo) -> str:
    ended = (
        f" (exit {shell.exit_code})" if shell.exit_code is not None else (f" ({shell.signal})" if shell.signal else "")
    )
    return shown(f"{shell.id}  {shell.state}{ended}  {shell.cols}x{shell.rows}  {shell.cwd}")


def shell_open(args: argparse.Namespace) -> int:
    shell = (
        sdk(args)
        .workspace(args.workspace)
        .shells.open(
            cwd=args.cwd,
            cols=args.cols,
            rows=args.rows,
            env=key_values(args.env, "--env"),
            secret_env=args.secret_env,
            secret_files=args.secret_file,
        )
    )
    if args.json:
        emit_json(shell.to_dict())
    elif args.id_only:
        print(shell.id)
    else:
        print(f"opened {_describe(shell)}")
    return 0


def shell_list(args: argparse.Namespace) -> int:
    shells = sdk(args).workspace(args.workspace).shells.list()
    if args.json:
        emit_json({"shells": [s.to_dict() for s in shells]})
    elif not shells:
        print("no shells (open one with `roost workspace shell open WS`)")
    else:
        rows = [
            [s.id, s.state, "" if s.exit_code is None else str(s.exit_code), f"{s.cols}x{s.rows}", s.cwd, s.created_at]
            for s in shells
        ]
        print(table(rows, ["SHELL", "STATE", "EXIT", "SIZE", "CWD", "CREATED"]))
    return 0


def _print_output(output: ShellOutput) -> None:
    """The output on stdout; on stderr where it ended, what ended the wait and the command's status."""
    sys.stdout.write(output.data)
    sys.stdout.flush()
    if output.data and not output.data.endswith("\n"):
        sys.stderr.write("\n")  # a prompt has no newline: keep the status on a line of its own
    dropped = f"; {output.dropped} earlier bytes were dropped" if output.dropped else ""
    ended = ""
    if output.ended_by == "command_done":
        ended = f"; command exited {output.exit_code}"
    elif output.ended_by is not None:
        ended = f"; wait ended by {output.ended_by}"
    sys.stderr.write(f"roost: next cursor {output.next_cursor} (shell {output.state}){ended}{dropped}\n")


def shell_read(args: argparse.Namespace) -> int:
    output = (
        sdk(args)
        .workspace(args.workspace)
        .shells.read(
            args.shell,
            cursor=args.cursor,
            max_bytes=args.max_bytes,
            plain=args.plain,
            until_idle_ms=args.until_idle_ms,
            until_pattern=args.until_pattern,
            until_command_done=args.until_command_done,
            timeout_ms=args.timeout_ms,
        )
    )
    if args.json:
        emit_json(output.to_dict())
    else:
        _print_output(output)
    return 0


def shell_write(args: argparse.Namespace) -> int:
    shells = sdk(args).workspace(args.workspace).shells
    data, newline = (sys.stdin.buffer.read(), False) if args.stdin else (args.input, not args.no_newline)
    if not args.and_wait and (args.timeout_ms is not None or args.plain):
        raise InvalidArgument("--timeout-ms and --plain shape the wait of --and-wait", hint="add --and-wait")
    if args.and_wait:
        output = shells.run(
            args.shell, data, newline=newline, timeout_ms=args.timeout_ms, max_bytes=args.max_bytes, plain=args.plain
        )
        if args.json:
            emit_json(output.to_dict())
        else:
            _print_output(output)
        return 0
    written = shells.write(args.shell, data, newline=newline)
    if args.json:
        emit_json({"id": args.shell, "written": written})
    return 0


def shell_signal(args: argparse.Namespace) -> int:
    sent = sdk(args).workspace(args.workspace).shells.signal(args.shell, args.signal)
    if args.json:
        emit_json({"id": args.shell, "signal": sent})
    return 0


def shell_resize(args: argparse.Namespace) -> int:
    sdk(args).workspace(args.workspace).shells.resize(args.shell, args.cols, args.rows)
    if args.json:
        emit_json({"id": args.shell, "cols": args.cols, "rows": args.rows})
    return 0


def shell_close(args: argparse.Namespace) -> int:
    shell = sdk(args).workspace(args.workspace).shells.close(args.shell)
    if args.json:
        emit_json(shell.to_dict())
    else:
        print(f"closed {_describe(shell)}")
    return 0


def shell_attach(args: argparse.Namespace) -> int:
    from roost.cli.attach import attach

    return attach(sdk(args).workspace(args.workspace), args.shell)
