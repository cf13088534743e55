"""Agent operations on PTY shells: open, list, read (waiting as asked), write, signal, resize, close, attach.

Thin translations between op messages (`roost.protocol.ops.shells`) and the
`ShellRegistry`; the registry is made on first use and lives as long as the agent.

Imports: the request core, the agent's `fs` layer and `secret_files`, this package, protocol and the standard library only.
"""

from __future__ import annotations

import shutil
import time

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs.dirfd import fd_path
from roost.agent.record_page import RecordPage
from roost.agent.secret_files import ProcessSecrets
from roost.agent.shells.records import RUNNING
from roost.agent.shells.registry import ShellRegistry, ShellSession, set_window, signal_number
from roost.agent.shells.waits import CommandDone, Condition, PatternSeen, Quiet, wait_for
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.limits import MAX_SHELL_READ_BYTES
from roost.protocol.messages import CH_PTY
from roost.protocol.ops.shells import (
    COMMAND_DONE,
    ShellAttachArgs,
    ShellAttachResult,
    ShellCloseArgs,
    ShellListArgs,
    ShellListResult,
    ShellOpenArgs,
    ShellReadArgs,
    ShellReadResult,
    ShellResizeArgs,
    ShellResizeResult,
    ShellSignalArgs,
    ShellSignalResult,
    ShellWriteArgs,
    ShellWriteResult,
    compiled_pattern,
    signal_name,
)

DEFAULT_COMMAND = ["bash", "-i"]
# An image without bash (busybox, alpine) still has a POSIX shell.
FALLBACK_COMMAND = ["sh", "-i"]
DEFAULT_TIMEOUT_MS = 10_000


def registry(agent: AgentState) -> ShellRegistry:
    return agent.part("shells", lambda: ShellRegistry(agent.state_dir, processes=agent.processes))


def _default_command(path: str | None) -> list[str]:
    """bash when the workspace has it, else sh."""
    if shutil.which(DEFAULT_COMMAND[0], path=path) is None and shutil.which(FALLBACK_COMMAND[0], path=path):
        return FALLBACK_COMMAND
    return DEFAULT_COMMAND


def _not_running(session: ShellSession) -> OpError:
    return OpError(
        Code.SHELL_NOT_RUNNING,
        f"shell {session.record.id} has {session.record.state}",
        hint="its output can still be read; open a new shell (shell open)",
    )


def open_shell(agent: AgentState, args: ShellOpenArgs, ctx: RequestContext) -> HandlerResult:
    env = dict(agent.base_env)
    env.update({"TERM": "xterm-256color", "COLUMNS": str(args.cols), "LINES": str(args.rows)})
    env.update(args.env)
    command = list(args.command) if args.command else _default_command(env.get("PATH"))
    granted = ProcessSecrets(
        args.secrets, workspace_root=agent.paths.root
    )  # its files go when the shell ends, or now if it does not start
    try:
        with agent.paths.directory(args.cwd) as cwd:
            guest_cwd = agent.paths.to_guest(cwd.rel)
            env = granted.merged(env)
            record = registry(agent).open(
                command, fd_path(cwd.fd), env, args.cols, args.rows, guest_cwd, granted.remove
            )
    except BaseException:
        granted.remove()
        raise
    return HandlerResult(record.to_state())


def list_shells(agent: AgentState, args: ShellListArgs, ctx: RequestContext) -> HandlerResult:
    """Stream every shell's record, oldest first."""
    page = RecordPage(ctx, args)
    for record in registry(agent).records():
        key = (record.created_at.encode(), record.id.encode())
        if not page.seen(key) and not page.add(key, record.to_state()):
            break
    return HandlerResult(page.summary(ShellListResult))


def _condition(session: ShellSession, args: ShellReadArgs) -> Condition | None:
    """What the read waits for, if anything."""
    if args.wait_idle_ms is not None:
        return Quiet(session.ring, args.wait_idle_ms / 1000, time.monotonic())
    if args.until_pattern is not None:
        return PatternSeen(session.ring, compiled_pattern(args.until_pattern), args.cursor)
    if args.until_command_done:
        if session.marks is None:
            raise OpError(
                Code.INVALID_ARGUMENT,
                f"shell {session.record.id} runs {' '.join(session.record.command)}, which shows roost no "
                "prompt marks, so the end of a command cannot be seen",
                hint="wait for quiet (until_idle_ms) or for a pattern (until_pattern) instead",
            )
        return CommandDone(session.commands)
    return None


def read_shell(agent: AgentState, args: ShellReadArgs, ctx: RequestContext) -> HandlerResult:
    session = registry(agent).get(args.id)
    condition = _condition(session, args)
    ended_by = None
    max_bytes = args.max_bytes
    if condition is not None:
        timeout_ms = DEFAULT_TIMEOUT_MS if args.timeout_ms is None else args.timeout_ms
        ended_by = wait_for(session.ring, condition, timeout_ms / 1000, ctx.cancelled)
    if ended_by == COMMAND_DONE and args.cursor < session.commands.done_at:
        max_bytes = min(max_bytes, session.commands.done_at - args.cursor)  # the output, not the prompt after it
    chunk = session.ring.read(args.cursor, max_bytes)
    record = session.record
    exit_code = record.exit_code
    if ended_by == COMMAND_DONE and record.state == RUNNING:
        exit_code = session.commands.status
    result = ShellReadResult(
        id=record.id,
        state=record.state,
        cursor=chunk.cursor,
        next_cursor=chunk.next_cursor,
        dropped=chunk.dropped,
        end=session.ring.end,
        exit_code=exit_code,
        signal=record.signal,
        ended_by=ended_by,
    )
    return HandlerResult(result, chunk.data)


def write_shell(agent: AgentState, args: ShellWriteArgs, ctx: RequestContext) -> HandlerResult:
    session = registry(agent).get(args.id)
    if not session.running:
        raise _not_running(session)
    data = b"".join(ctx.upload())
    cursor = session.ring.end
    session.write(data)
    return HandlerResult(ShellWriteResult(id=session.record.id, written=len(data), cursor=cursor))


def signal_shell(agent: AgentState, args: ShellSignalArgs, ctx: RequestContext) -> HandlerResult:
    session = registry(agent).get(args.id)
    name = signal_name(args.signal)
    if not session.running:
        raise _not_running(session)
    group = session.foreground_group()
    agent.processes.signal_group(group, signal_number(name))  # a job that ended on its own meanwhile is left alone
    return HandlerResult(ShellSignalResult(id=session.record.id, signal=name, process_group=group))


def resize_shell(agent: AgentState, args: ShellResizeArgs, ctx: RequestContext) -> HandlerResult:
    session = registry(agent).get(args.id)
    cols = session.record.cols if args.cols is None else args.cols
    rows = session.record.rows if args.rows is None else args.rows
    if session.running:
        try:
            with session.terminal() as fd:
                set_window(fd, cols, rows)  # the kernel sends SIGWINCH to the foreground job
        except OSError:
            pass  # it ended meanwhile: the size is still recorded, for the record
    registry(agent).resized(session, cols, rows)
    return HandlerResult(ShellResizeResult(id=session.record.id, cols=cols, rows=rows))


def close_shell(agent: AgentState, args: ShellCloseArgs, ctx: RequestContext) -> HandlerResult:
    return HandlerResult(registry(agent).close(args.id).to_state())


def attach_shell(agent: AgentState, args: ShellAttachArgs, ctx: RequestContext) -> HandlerResult:
    """Stream output from `cursor` as it arrives, until cancelled or the shell ends."""
    session = registry(agent).get(args.id)
    cursor = session.ring.end if args.cursor is None else args.cursor
    while not ctx.cancelled.is_set():
        if session.ring.wait_beyond(cursor, 0.25):
            chunk = session.ring.read(cursor, MAX_SHELL_READ_BYTES)
            try:
                ctx.send(CH_PTY, chunk.data)
            except (OpError, OSError):
                break  # not sent: the reply's cursor stays where the host's copy ends
            cursor = chunk.next_cursor
        elif session.ring.closed:
            break
    record = session.record
    result = ShellAttachResult(
        id=record.id, state=record.state, next_cursor=cursor, exit_code=record.exit_code, signal=record.signal
    )
    return HandlerResult(result)


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.SHELL_OPEN: open_shell,
    Op.SHELL_LIST: list_shells,
    Op.SHELL_READ: read_shell,
    Op.SHELL_WRITE: write_shell,
    Op.SHELL_SIGNAL: signal_shell,
    Op.SHELL_RESIZE: resize_shell,
    Op.SHELL_CLOSE: close_shell,
    Op.SHELL_ATTACH: attach_shell,
}
