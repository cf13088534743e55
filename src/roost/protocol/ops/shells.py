"""Messages of the shell ops: open, list, read, write, signal, resize, close, attach.

The rules both sides share live here: terminal sizes, the signals a shell
takes, read sizes and cursors into a shell's output.

Imports: this package's `message` and `paging`, protocol's `messages` and `limits`; standard library only.
"""

from __future__ import annotations

import re

from roost.protocol.limits import (
    DEFAULT_SHELL_READ_BYTES,
    MAX_FILE_OFFSET,
    MAX_SHELL_READ_BYTES,
    MAX_SHELL_WAIT_MS,
    MAX_TERMINAL_CELLS,
)
from roost.protocol.messages import Op
from roost.protocol.ops.message import GUEST_ROOT, Message, OpMessages, check_read_size, invalid, message, shown, wire
from roost.protocol.ops.paging import PageArgs, PageSummary
from roost.protocol.ops.secrets import SecretGrant

__all__ = [
    "COMMAND_DONE",
    "ENDED_BY",
    "IDLE",
    "MESSAGES",
    "PATTERN",
    "SHELL_EXITED",
    "SHELL_SIGNALS",
    "TIMEOUT",
    "ShellAttachArgs",
    "ShellAttachResult",
    "ShellCloseArgs",
    "ShellListArgs",
    "ShellListResult",
    "ShellOpenArgs",
    "ShellReadArgs",
    "ShellReadResult",
    "ShellResizeArgs",
    "ShellResizeResult",
    "ShellSignalArgs",
    "ShellSignalResult",
    "ShellState",
    "ShellWriteArgs",
    "ShellWriteResult",
    "check_terminal_size",
    "compiled_pattern",
    "signal_name",
]

# The signals a shell's foreground job can be sent, by name (no SIG prefix).
SHELL_SIGNALS = ("INT", "TERM", "HUP", "KILL", "QUIT")
_CURSOR_HINT = "pass the next_cursor of the last read (0 reads from the start)"
# What ended a read's wait: quiet, the pattern, the command's prompt, the timeout, or the shell's end.
IDLE, PATTERN, COMMAND_DONE, TIMEOUT, SHELL_EXITED = "idle", "pattern", "command_done", "timeout", "shell_exited"
ENDED_BY = (IDLE, PATTERN, COMMAND_DONE, TIMEOUT, SHELL_EXITED)
MAX_PATTERN_CHARS = 1000


def check_terminal_size(cols: object, rows: object) -> None:
    """A terminal's size in character cells: 1 to `MAX_TERMINAL_CELLS` each.

    Raises:
        OpError: invalid_argument.
    """
    for what, value in (("cols", cols), ("rows", rows)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TERMINAL_CELLS:
            raise invalid(
                f"{what} must be a whole number from 1 to {MAX_TERMINAL_CELLS}, not {shown(value)}",
                hint=f"give a whole number from 1 to {MAX_TERMINAL_CELLS}, e.g. cols 120, rows 32",
            )


def signal_name(given: object) -> str:
    """A shell signal's name as the agent takes it: upper case, no SIG prefix.

    Raises:
        OpError: invalid_argument, for anything that is not one of `SHELL_SIGNALS`.
    """
    name = given.upper().removeprefix("SIG") if isinstance(given, str) else ""
    if name not in SHELL_SIGNALS:
        raise invalid(f"unknown signal {given!r}", hint=f"use one of {', '.join(SHELL_SIGNALS)}")
    return name


def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """A read's `until_pattern` as a regular expression (Python syntax, searched with MULTILINE).

    Raises:
        OpError: invalid_argument, for a pattern that does not compile or is too long.
    """
    hint = "give a Python regular expression, e.g. 'passed|failed' or 'exit=[0-9]+'; a backslash makes ( [ . * literal"
    if len(pattern) > MAX_PATTERN_CHARS:
        raise invalid(f"until_pattern is longer than {MAX_PATTERN_CHARS} characters", hint=hint)
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise invalid(f"until_pattern {pattern!r} is not a valid regular expression: {exc}", hint=hint) from None


@message
class ShellState(Message):
    """A shell as the agent reports it (`state`: running, exited, closed or lost); also a `shell.list` record."""

    id: str = wire()
    command: tuple[str, ...] = wire()
    cwd: str = wire(name=True)
    cols: int = wire(minimum=1)
    rows: int = wire(minimum=1)
    state: str = wire()
    created_at: str = wire()
    pid: int | None = wire(None)
    exit_code: int | None = wire(None)
    signal: str | None = wire(None)
    closed_at: str | None = wire(None)


@message
class ShellOpenArgs(Message):
    """Open a PTY shell running `command` (default `bash -i`) in `cwd`, with `env` over the agent's."""

    OP = Op.SHELL_OPEN
    cwd: str = wire(GUEST_ROOT, name=True)
    cols: int = wire(120)
    rows: int = wire(32)
    command: tuple[str, ...] | None = wire(None)
    env: dict[str, str] = wire({})
    # Secrets for this process only (never a record); a grant's value is left out of the repr.
    secrets: tuple[SecretGrant, ...] = wire(())

    def check(self) -> None:
        check_terminal_size(self.cols, self.rows)


@message
class ShellListArgs(PageArgs):
    OP = Op.SHELL_LIST


@message
class ShellListResult(PageSummary):
    """Records: `ShellState`, oldest first."""


@message
class ShellReadArgs(Message):
    """Read output from `cursor`, first waiting (up to `timeout_ms`) for at most one thing: output quiet
    for `wait_idle_ms`, `until_pattern` in the plain text after `cursor`, or `until_command_done`."""

    OP = Op.SHELL_READ
    id: str = wire()
    cursor: int = wire(0, minimum=0, maximum=MAX_FILE_OFFSET, hint=_CURSOR_HINT)
    max_bytes: int = wire(DEFAULT_SHELL_READ_BYTES, minimum=1)
    wait_idle_ms: int | None = wire(None, minimum=0, maximum=MAX_SHELL_WAIT_MS)
    timeout_ms: int | None = wire(None, minimum=1, maximum=MAX_SHELL_WAIT_MS)
    until_pattern: str | None = wire(None)
    until_command_done: bool = wire(False)

    def check(self) -> None:
        check_read_size(self.max_bytes, MAX_SHELL_READ_BYTES, hint="read in pages with the cursor")
        waits = [self.wait_idle_ms is not None, self.until_pattern is not None, self.until_command_done]
        if sum(waits) > 1:
            raise invalid(
                "a read waits for one thing: idle, a pattern or the command's end, not several",
                hint="keep one of until_idle_ms, until_pattern and until_command_done",
            )
        if self.until_pattern is not None:
            compiled_pattern(self.until_pattern)


@message
class ShellReadResult(Message):
    """What a read found (the output itself is the RESPONSE body), from `cursor` (later than asked when
    `dropped` bytes were overwritten) to `next_cursor`; `end` is where the output ends now."""

    id: str = wire()
    state: str = wire()
    cursor: int = wire(minimum=0)
    next_cursor: int = wire(minimum=0)
    dropped: int = wire(minimum=0)
    end: int = wire(minimum=0)
    exit_code: int | None = wire(None)
    signal: str | None = wire(None)
    # What ended the wait (None when the read did not wait); with command_done, `exit_code` is the command's.
    ended_by: str | None = wire(None, choices=ENDED_BY)


@message
class ShellWriteArgs(Message):
    """Type the request's body into the shell."""

    OP = Op.SHELL_WRITE
    id: str = wire()


@message
class ShellWriteResult(Message):
    """`cursor`: where the output was when the input went in; a read from there shows what it caused."""

    id: str = wire()
    written: int = wire(minimum=0)
    cursor: int | None = wire(None, minimum=0)


@message
class ShellSignalArgs(Message):
    """Send `signal` (one of `SHELL_SIGNALS`, any case, SIG prefix or not) to the shell's foreground job."""

    OP = Op.SHELL_SIGNAL
    id: str = wire()
    signal: str = wire("INT")

    def check(self) -> None:
        signal_name(self.signal)


@message
class ShellSignalResult(Message):
    id: str = wire()
    signal: str = wire(choices=SHELL_SIGNALS)
    process_group: int = wire()


@message
class ShellResizeArgs(Message):
    """Resize the terminal; a size not given stays as it is."""

    OP = Op.SHELL_RESIZE
    id: str = wire()
    cols: int | None = wire(None)
    rows: int | None = wire(None)

    def check(self) -> None:
        check_terminal_size(1 if self.cols is None else self.cols, 1 if self.rows is None else self.rows)


@message
class ShellResizeResult(Message):
    id: str = wire()
    cols: int = wire(minimum=1)
    rows: int = wire(minimum=1)


@message
class ShellCloseArgs(Message):
    """Close a shell (its job is hung up); the result is its final `ShellState`."""

    OP = Op.SHELL_CLOSE
    id: str = wire()


@message
class ShellAttachArgs(Message):
    """Stream output on the pty channel from `cursor` (default: from now) until cancelled or the shell ends."""

    OP = Op.SHELL_ATTACH
    id: str = wire()
    cursor: int | None = wire(None, minimum=0, maximum=MAX_FILE_OFFSET, hint=_CURSOR_HINT)


@message
class ShellAttachResult(Message):
    id: str = wire()
    state: str = wire()
    next_cursor: int = wire(minimum=0)
    exit_code: int | None = wire(None)
    signal: str | None = wire(None)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.SHELL_OPEN: OpMessages(ShellOpenArgs, ShellState),
    Op.SHELL_LIST: OpMessages(ShellListArgs, ShellListResult, ShellState),
    Op.SHELL_READ: OpMessages(ShellReadArgs, ShellReadResult),
    Op.SHELL_WRITE: OpMessages(ShellWriteArgs, ShellWriteResult),
    Op.SHELL_SIGNAL: OpMessages(ShellSignalArgs, ShellSignalResult),
    Op.SHELL_RESIZE: OpMessages(ShellResizeArgs, ShellResizeResult),
    Op.SHELL_CLOSE: OpMessages(ShellCloseArgs, ShellState),
    Op.SHELL_ATTACH: OpMessages(ShellAttachArgs, ShellAttachResult),
}
