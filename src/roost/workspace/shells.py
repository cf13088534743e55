"""Shell sessions from the host's side: typed calls into the agent's shell ops.

The agent owns the PTYs and their buffers; these functions only translate
arguments and replies, add the newline a typed line needs, and strip
terminal control sequences when plain text is asked for.

Imports: models, protocol, errors, store records, workspace siblings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from roost import arguments
from roost.errors import InvalidArgument
from roost.models import ShellInfo, ShellOutput
from roost.protocol import Op
from roost.protocol.limits import MAX_SHELL_READ_BYTES, MAX_SHELL_WAIT_MS
from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine
from roost.workspace.terminal_text import plain_text
from roost.workspace.wire_names import received_name

SIGNAL_NAMES = ("INT", "TERM", "HUP", "KILL", "QUIT")


def _info(data: dict[str, Any]) -> ShellInfo:
    return ShellInfo(
        id=str(data["id"]),
        command=tuple(data.get("command") or ()),
        cwd=received_name(data.get("cwd", "/workspace")),
        cols=int(data.get("cols", 0)),
        rows=int(data.get("rows", 0)),
        state=str(data["state"]),
        created_at=str(data.get("created_at", "")),
        exit_code=data.get("exit_code"),
        signal=data.get("signal"),
        closed_at=data.get("closed_at"),
    )


def open_shell(
    engine: Engine,
    record: WorkspaceRecord,
    *,
    cwd: str | None = None,
    cols: int = 120,
    rows: int = 32,
    env: dict[str, str] | None = None,
) -> ShellInfo:
    cols, rows = arguments.terminal_size(cols, rows)
    args: dict[str, Any] = {"cols": cols, "rows": rows, "env": arguments.env_vars(env)}
    if cwd is not None:
        args["cwd"] = arguments.guest_path(cwd, "cwd")
    return _info(engine.call(record, Op.SHELL_OPEN, args).result)


def list_shells(engine: Engine, record: WorkspaceRecord) -> list[ShellInfo]:
    """Every shell, oldest first (streamed: the list has no length limit)."""
    with engine.records(record, Op.SHELL_LIST) as listed:
        return [_info(s) for s in listed]


def read_shell(
    engine: Engine,
    record: WorkspaceRecord,
    shell_id: str,
    *,
    cursor: int = 0,
    max_bytes: int = 65536,
    plain: bool = False,
    wait_for_idle_ms: int | None = None,
    timeout_ms: int | None = None,
) -> ShellOutput:
    args: dict[str, Any] = {
        "id": shell_id,
        "cursor": arguments.file_offset(cursor, "cursor"),
        "max_bytes": arguments.read_size(max_bytes, "max_bytes", MAX_SHELL_READ_BYTES, low=1),
    }
    idle = arguments.optional_count(wait_for_idle_ms, "wait_for_idle_ms", MAX_SHELL_WAIT_MS, low=0, unit="ms")
    deadline = arguments.optional_count(timeout_ms, "timeout_ms", MAX_SHELL_WAIT_MS, unit="ms")
    if idle is not None:
        args["wait_idle_ms"] = idle
        if deadline is not None:
            args["timeout_ms"] = deadline
    reply = engine.call(record, Op.SHELL_READ, args)
    result = reply.result
    return ShellOutput(
        id=shell_id,
        data=plain_text(reply.body) if plain else reply.body.decode("utf-8", errors="replace"),
        cursor=int(result["cursor"]),
        next_cursor=int(result["next_cursor"]),
        dropped=int(result["dropped"]),
        end=int(result["end"]),
        state=str(result["state"]),
        exit_code=result.get("exit_code"),
        plain=plain,
    )


def write_shell(
    engine: Engine, record: WorkspaceRecord, shell_id: str, data: str | bytes, *, newline: bool = True
) -> int:
    if not isinstance(data, str | bytes):
        raise InvalidArgument(f"shell input must be text or bytes, not {type(data).__name__}", hint="e.g. 'ls -la'")
    payload = data.encode() if isinstance(data, str) else data
    if newline:
        payload += b"\n"
    if not payload:
        raise InvalidArgument("nothing to write", hint="give the text to type, or send the newline")
    return int(engine.call(record, Op.SHELL_WRITE, {"id": shell_id}, upload=[payload]).result["written"])


def signal_shell(engine: Engine, record: WorkspaceRecord, shell_id: str, signal: str = "INT") -> str:
    name = signal.upper().removeprefix("SIG") if isinstance(signal, str) else ""
    if name not in SIGNAL_NAMES:
        raise InvalidArgument(f"unknown signal {signal!r}", hint=f"use one of {', '.join(SIGNAL_NAMES)}")
    return str(engine.call(record, Op.SHELL_SIGNAL, {"id": shell_id, "signal": name}).result["signal"])


def resize_shell(engine: Engine, record: WorkspaceRecord, shell_id: str, cols: int, rows: int) -> None:
    cols, rows = arguments.terminal_size(cols, rows)
    engine.call(record, Op.SHELL_RESIZE, {"id": shell_id, "cols": cols, "rows": rows})


def close_shell(engine: Engine, record: WorkspaceRecord, shell_id: str) -> ShellInfo:
    return _info(engine.call(record, Op.SHELL_CLOSE, {"id": shell_id}).result)


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
    args: dict[str, Any] = {"id": shell_id}
    if cursor is not None:
        args["cursor"] = arguments.file_offset(cursor, "cursor")
    engine.call_until(record, Op.SHELL_ATTACH, args, lambda _ch, data: on_output(data), stop)
    return next(s for s in list_shells(engine, record) if s.id == shell_id)
