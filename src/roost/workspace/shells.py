"""Shell sessions from the host's side: typed calls into the agent's shell ops.

The agent owns the PTYs and their buffers; these functions only build the
shell ops' messages (`roost.protocol.ops.shells`, which check every value
the agent would) and read their results, add the newline a typed line needs, strip
terminal control sequences when plain text is asked for, and run a command line
by typing it and reading until its prompt is back.

Imports: arguments, models, protocol (the shell messages), errors, store records, workspace siblings.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

from roost import arguments
from roost.errors import InvalidArgument
from roost.models import ShellInfo, ShellOutput
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.shells import (
    ShellAttachArgs,
    ShellCloseArgs,
    ShellListArgs,
    ShellOpenArgs,
    ShellReadArgs,
    ShellReadResult,
    ShellResizeArgs,
    ShellResizeResult,
    ShellSignalArgs,
    ShellSignalResult,
    ShellState,
    ShellWriteArgs,
    ShellWriteResult,
    signal_name,
)
from roost.protocol.terminal_text import plain_text
from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine
from roost.workspace.op_args import checked_args
from roost.workspace.secrets import SecretUses, grants_for


def shell_info(state: ShellState) -> ShellInfo:
    """A shell as the models show it, from the agent's report."""
    return ShellInfo(
        id=state.id,
        command=state.command,
        cwd=state.cwd,
        cols=state.cols,
        rows=state.rows,
        state=state.state,
        created_at=state.created_at,
        exit_code=state.exit_code,
        signal=state.signal,
        closed_at=state.closed_at,
    )


def open_shell(
    engine: Engine,
    record: WorkspaceRecord,
    *,
    cwd: str | None = None,
    cols: int = 120,
    rows: int = 32,
    env: dict[str, str] | None = None,
    secret_env: SecretUses = (),
    secret_files: SecretUses = (),
    command: Sequence[str] | None = None,
) -> ShellInfo:
    """Open a PTY shell (`command` on the PTY instead of an interactive bash when given);
    `secret_env`/`secret_files` give it attached secrets (see `workspace.secrets`).

    Raises:
        InvalidArgument, SecretNotFound, SecretError: a bad argument or secret use, before any call.
    """
    if isinstance(command, str) or (command is not None and not command):
        raise InvalidArgument("a shell's command is a non-empty argv list", hint='e.g. ["bash", "-c", "make test"]')
    env_vars = arguments.env_vars(env)
    where = GUEST_ROOT if cwd is None else arguments.guest_name(cwd, "cwd")
    with checked_args():
        args = ShellOpenArgs(
            cwd=where, cols=cols, rows=rows, env=env_vars, command=None if command is None else tuple(command)
        )
    granted = grants_for(engine.home, record, secret_env, secret_files)
    if granted:
        args = dataclasses.replace(args, secrets=granted)
    return shell_info(engine.call(record, args).result_as(ShellState))


def list_shells(engine: Engine, record: WorkspaceRecord) -> list[ShellInfo]:
    """Every shell, oldest first (streamed: the list has no length limit)."""
    with engine.records(record, ShellListArgs()) as listed:
        return [shell_info(state) for state in listed.records_as(ShellState)]


def _idle_ms(until_idle_ms: int | None, wait_for_idle_ms: int | None) -> int | None:
    """`until_idle_ms`, or its older name `wait_for_idle_ms`; not both."""
    if until_idle_ms is not None and wait_for_idle_ms is not None:
        raise InvalidArgument(
            "until_idle_ms and wait_for_idle_ms are one setting under two names",
            hint="give until_idle_ms only (wait_for_idle_ms is its older name)",
        )
    return wait_for_idle_ms if until_idle_ms is None else until_idle_ms


def read_shell(
    engine: Engine,
    record: WorkspaceRecord,
    shell_id: str,
    *,
    cursor: int = 0,
    max_bytes: int = 65536,
    plain: bool = False,
    until_idle_ms: int | None = None,
    until_pattern: str | None = None,
    until_command_done: bool = False,
    timeout_ms: int | None = None,
    wait_for_idle_ms: int | None = None,
) -> ShellOutput:
    """Output from `cursor`, after the agent has waited for at most one of quiet, a pattern or the command's end.

    Raises:
        InvalidArgument: several waits, or a pattern that is not a regular expression (before any call).
    """
    with checked_args():
        args = ShellReadArgs(
            id=shell_id,
            cursor=cursor,
            max_bytes=max_bytes,
            wait_idle_ms=_idle_ms(until_idle_ms, wait_for_idle_ms),
            timeout_ms=timeout_ms,
            until_pattern=until_pattern,
            until_command_done=until_command_done,
        )
    reply = engine.call(record, args)
    result = reply.result_as(ShellReadResult)
    return ShellOutput(
        id=shell_id,
        data=plain_text(reply.body) if plain else reply.body.decode("utf-8", errors="replace"),
        cursor=result.cursor,
        next_cursor=result.next_cursor,
        dropped=result.dropped,
        end=result.end,
        state=result.state,
        exit_code=result.exit_code,
        plain=plain,
        ended_by=result.ended_by,
    )


def _typed(
    engine: Engine, record: WorkspaceRecord, shell_id: str, data: str | bytes, *, newline: bool
) -> ShellWriteResult:
    if not isinstance(data, str | bytes):
        raise InvalidArgument(f"shell input must be text or bytes, not {type(data).__name__}", hint="e.g. 'ls -la'")
    payload = data.encode() if isinstance(data, str) else data
    if newline:
        payload += b"\n"
    if not payload:
        raise InvalidArgument("nothing to write", hint="give the text to type, or send the newline")
    with checked_args():
        args = ShellWriteArgs(id=shell_id)
    return engine.call(record, args, upload=[payload]).result_as(ShellWriteResult)


def write_shell(
    engine: Engine, record: WorkspaceRecord, shell_id: str, data: str | bytes, *, newline: bool = True
) -> int:
    """Type into the shell; the bytes written."""
    return _typed(engine, record, shell_id, data, newline=newline).written


def run_in_shell(
    engine: Engine,
    record: WorkspaceRecord,
    shell_id: str,
    data: str | bytes,
    *,
    newline: bool = True,
    timeout_ms: int | None = None,
    max_bytes: int = 65536,
    plain: bool = False,
) -> ShellOutput:
    """Type a command line and return what it printed from then on, once its prompt is back (or the timeout).

    Two calls: the write says where its output starts, the read waits in the agent for the command's end.
    """
    written = _typed(engine, record, shell_id, data, newline=newline)
    cursor = 0 if written.cursor is None else written.cursor
    return read_shell(
        engine,
        record,
        shell_id,
        cursor=cursor,
        max_bytes=max_bytes,
        plain=plain,
        until_command_done=True,
        timeout_ms=timeout_ms,
    )


def signal_shell(engine: Engine, record: WorkspaceRecord, shell_id: str, signal: str = "INT") -> str:
    with checked_args():
        args = ShellSignalArgs(id=shell_id, signal=signal_name(signal))
    return engine.call(record, args).result_as(ShellSignalResult).signal


def resize_shell(engine: Engine, record: WorkspaceRecord, shell_id: str, cols: int, rows: int) -> None:
    with checked_args():
        args = ShellResizeArgs(id=shell_id, cols=cols, rows=rows)
    engine.call(record, args).result_as(ShellResizeResult)


def close_shell(engine: Engine, record: WorkspaceRecord, shell_id: str) -> ShellInfo:
    with checked_args():
        args = ShellCloseArgs(id=shell_id)
    return shell_info(engine.call(record, args).result_as(ShellState))


def attach_shell(
    engine: Engine,
    record: WorkspaceRecord,
    shell_id: str,
    on_output: Callable[[bytes], None],
    stop: threading.Event,
    *,
    cursor: int | None = None,
) -> ShellInfo:
    """Stream a shell's output to `on_output` until `stop` is set or the shell ends."""
    with checked_args():
        args = ShellAttachArgs(id=shell_id, cursor=cursor)
    engine.call_until(record, args, lambda _ch, data: on_output(data), stop)
    return next(s for s in list_shells(engine, record) if s.id == shell_id)
