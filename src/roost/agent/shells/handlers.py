"""Agent operations on PTY shells: open, list, read, write, signal, resize, close, attach.

Thin translations between requests and the `ShellRegistry`; the registry is
made on first use and lives as long as the agent.

Imports: the request core, the agent's `fs` layer, this package, protocol and the standard library only.
"""

from __future__ import annotations

from typing import Any

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs.dirfd import fd_path
from roost.agent.record_page import RecordPage
from roost.agent.shells.records import ShellRecord
from roost.agent.shells.registry import ShellRegistry, ShellSession, set_window, signal_number
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.limits import DEFAULT_SHELL_READ_BYTES as DEFAULT_READ
from roost.protocol.limits import MAX_SHELL_READ_BYTES as MAX_READ
from roost.protocol.limits import MAX_SHELL_WAIT_MS as MAX_WAIT_MS
from roost.protocol.limits import MAX_TERMINAL_CELLS
from roost.protocol.messages import CH_PTY
from roost.protocol.names import to_text


def registry(agent: AgentState) -> ShellRegistry:
    return agent.part("shells", lambda: ShellRegistry(agent.state_dir, processes=agent.processes))


def _session(agent: AgentState, ctx: RequestContext) -> ShellSession:
    return registry(agent).get(ctx.arg_str("id"))


def _size(ctx: RequestContext, default_cols: int, default_rows: int) -> tuple[int, int]:
    cols = ctx.arg_int("cols", default_cols, minimum=1)
    rows = ctx.arg_int("rows", default_rows, minimum=1)
    if cols > MAX_TERMINAL_CELLS or rows > MAX_TERMINAL_CELLS:
        raise OpError(
            Code.INVALID_ARGUMENT, f"cols and rows must be at most {MAX_TERMINAL_CELLS}", hint="e.g. cols 120, rows 32"
        )
    return cols, rows


def _not_running(session: ShellSession) -> OpError:
    return OpError(
        Code.SHELL_NOT_RUNNING,
        f"shell {session.record.id} has {session.record.state}",
        hint="its output can still be read; open a new shell (shell open)",
    )


def _wire(record: ShellRecord) -> dict[str, Any]:
    """A shell's record as it is sent: its cwd in the text form of names."""
    return {**record.to_dict(), "cwd": to_text(record.cwd)}


def _status(session: ShellSession) -> dict[str, Any]:
    record = session.record
    return {"id": record.id, "state": record.state, "exit_code": record.exit_code, "signal": record.signal}


def open_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    guest_cwd = ctx.arg_path("cwd", "/workspace")
    cols, rows = _size(ctx, 120, 32)
    command = ctx.args.get("command") or ["bash", "-i"]
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise OpError(Code.INVALID_ARGUMENT, "'command' must be a list of strings")
    env = dict(agent.base_env)
    env.update({"TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)})
    env.update(ctx.arg_str_map("env"))
    with agent.paths.directory(guest_cwd) as cwd:
        record = registry(agent).open(command, fd_path(cwd.fd), env, cols, rows, agent.paths.to_guest(cwd.rel))
    return HandlerResult(_wire(record))


def list_shells(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    """Stream every shell's record, oldest first."""
    page = RecordPage(ctx)
    for record in registry(agent).records():
        key = (record.created_at.encode(), record.id.encode())
        if not page.seen(key) and not page.add(key, _wire(record)):
            break
    return HandlerResult(page.summary())


def read_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    session = _session(agent, ctx)
    cursor = ctx.arg_int("cursor", 0)
    max_bytes = ctx.arg_int("max_bytes", DEFAULT_READ, minimum=1)
    if max_bytes > MAX_READ:
        raise OpError(Code.READ_TOO_LARGE, f"max_bytes above {MAX_READ}", hint="read in pages with the cursor")
    idle_ms = ctx.args.get("wait_idle_ms")
    if idle_ms is None:
        chunk = session.ring.read(cursor, max_bytes)
    else:
        idle = ctx.arg_int("wait_idle_ms", 0)
        deadline = min(ctx.arg_int("timeout_ms", 10_000, minimum=1), MAX_WAIT_MS)
        chunk = session.ring.read_when_idle(cursor, max_bytes, idle / 1000, deadline / 1000)
    result = _status(session)
    result.update(cursor=chunk.cursor, next_cursor=chunk.next_cursor, dropped=chunk.dropped, end=session.ring.end)
    return HandlerResult(result, chunk.data)


def write_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    session = _session(agent, ctx)
    if not session.running:
        raise _not_running(session)
    data = b"".join(ctx.upload())
    session.write(data)
    return HandlerResult({"id": session.record.id, "written": len(data)})


def signal_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    session = _session(agent, ctx)
    number = signal_number(ctx.arg_str("signal", "INT"))
    if not session.running:
        raise _not_running(session)
    group = session.foreground_group()
    agent.processes.signal_group(group, number)  # a job that ended on its own meanwhile is left alone
    return HandlerResult(
        {"id": session.record.id, "signal": ctx.arg_str("signal", "INT").upper(), "process_group": group}
    )


def resize_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    session = _session(agent, ctx)
    cols, rows = _size(ctx, session.record.cols, session.record.rows)
    if session.running:
        set_window(session.master, cols, rows)  # the kernel sends SIGWINCH to the foreground job
    registry(agent).resized(session, cols, rows)
    return HandlerResult({"id": session.record.id, "cols": cols, "rows": rows})


def close_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    record = registry(agent).close(ctx.arg_str("id"))
    return HandlerResult(_wire(record))


def attach_shell(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    """Stream output from `cursor` as it arrives, until cancelled or the shell ends."""
    session = _session(agent, ctx)
    cursor = ctx.arg_int("cursor", session.ring.end)
    while not ctx.cancelled.is_set():
        if session.ring.wait_beyond(cursor, 0.25):
            chunk = session.ring.read(cursor, MAX_READ)
            cursor = chunk.next_cursor
            try:
                ctx.send(CH_PTY, chunk.data)
            except (OpError, OSError):
                break
        elif session.ring.closed:
            break
    result = _status(session)
    result["next_cursor"] = cursor
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
