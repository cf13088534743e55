"""`roost run` and `roost workspace exec`: run a command, stream its output,
exit with its exit code.

Imports: cli siblings, models, errors and the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys

from roost.cli.commands.common import command_from, key_values, sdk
from roost.cli.interactive_exec import PtyExec, run_on_pty
from roost.cli.output import EXIT_TIMEOUT, emit_error, emit_json, warn
from roost.cli.progress import progress_for
from roost.client import Workspace
from roost.errors import InvalidArgument, RoostError
from roost.models import ExecResult


def _stdin(args: argparse.Namespace) -> bytes | None:
    return sys.stdin.buffer.read() if args.stdin == "-" else None


def _stream(channel: str, data: bytes) -> None:
    out = sys.stdout.buffer if channel == "stdout" else sys.stderr.buffer
    out.write(data)
    out.flush()


def _finish(result: ExecResult, as_json: bool) -> int:
    if as_json:
        emit_json(result.to_dict())
    for stream, truncated in (("stdout", result.stdout_truncated), ("stderr", result.stderr_truncated)):
        if truncated:
            warn(f"{stream} was cut at the output cap; the full size was {getattr(result, stream + '_bytes')} bytes")
    if result.timed_out:
        timeout = RoostError(
            f"command timed out after {result.duration_ms / 1000:.1f}s",
            code="exec_timeout",
            hint="raise --timeout, or run it as a background service",
        )
        emit_error(timeout, as_json=as_json)
        return EXIT_TIMEOUT
    if result.exit_code is not None:
        return result.exit_code
    if result.signal:
        try:
            return 128 + int(signal.Signals[result.signal])
        except KeyError:
            return 128
    return 1


def run(args: argparse.Namespace) -> int:
    roost = sdk(args)
    with contextlib.ExitStack() as showing_progress:
        progress = showing_progress.enter_context(progress_for(args.json, f"prepare {args.env_name}"))

        def ready() -> None:
            showing_progress.close()  # the progress display goes before the command's output comes
            for message in roost.warnings:
                warn(message)

        result = roost.run(
            args.env_name,
            command_from(args),
            backend=args.backend,
            timeout=args.timeout,
            cwd=args.cwd,
            env_vars=key_values(args.env, "--env"),
            seed_path=args.seed_path,
            vcpus=args.vcpus,
            mem_mib=args.mem_mib,
            pids=args.pids,
            network_policy=args.network_policy,
            allow=args.allow_host,
            publish=args.publish,
            stdin=_stdin(args),
            on_output=None if args.json else _stream,
            progress=progress,
            on_ready=ready,
        )
    return _finish(result, args.json)


def _on_pty(workspace: Workspace, args: argparse.Namespace) -> int:
    """`exec -t`/`-it`: the command on a PTY attached to this terminal.

    Raises:
        InvalidArgument: an option that has no meaning on a terminal.
    """
    refused = [
        flag for flag, given in (("--json", args.json), ("--timeout", args.timeout), ("--stdin", args.stdin)) if given
    ]
    if refused:
        raise InvalidArgument(
            f"{refused[0]} does not go with -t", hint="drop it, or drop -t to capture the output instead"
        )
    command = command_from(args)
    spec = PtyExec(
        argv=["bash", "-c", command] if isinstance(command, str) else command,
        interactive=args.interactive,
        cwd=args.cwd,
        env=key_values(args.env, "--env"),
        secret_env=args.secret_env,
        secret_files=args.secret_file,
    )
    return run_on_pty(workspace, spec)


def workspace_exec(args: argparse.Namespace) -> int:
    workspace = sdk(args).workspace(args.workspace)
    if args.tty:
        return _on_pty(workspace, args)
    if args.interactive:
        args.stdin = "-"
    result = workspace.exec(
        command_from(args),
        cwd=args.cwd,
        env=key_values(args.env, "--env"),
        timeout=args.timeout,
        stdin=_stdin(args),
        on_output=None if args.json else _stream,
        secret_env=args.secret_env,
        secret_files=args.secret_file,
    )
    if result.history_error and not args.json:
        warn(f"the command ran, but it is missing from `roost workspace logs`: {result.history_error}")
    return _finish(result, args.json)
