"""Waiting in the agent for what a shell read asks: quiet, a pattern, or the end of a command.

Each condition looks at the shell's output (and its commands) whenever
something changed, and says whether it holds or how soon to look again
without news. The wait ends when the condition holds, when the shell has
ended, or at the timeout, and says which (`ended_by`).

Imports: this package's `ring` and `commands`, protocol (errors, shell messages, terminal text), the standard library.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Protocol

from roost.agent.shells.commands import CommandState
from roost.agent.shells.ring import ByteRing
from roost.protocol import Code, OpError
from roost.protocol.ops.shells import COMMAND_DONE, IDLE, PATTERN, SHELL_EXITED, TIMEOUT
from roost.protocol.terminal_text import plain_text

_SCAN_BYTES = 1 << 20  # how much new output a pattern scan converts at a time
CANCEL_CHECK_S = 0.25
MATCH_WINDOW = 64 * 1024  # how much of the newest text a pattern is looked for in


class Condition(Protocol):
    def check(self, now: float) -> tuple[str | None, float | None]:
        """What ended the wait (None: not yet) and, if nothing else happens, when to check again."""


class Quiet:
    """No output for `idle_s`, counted from `began` at the earliest (a slow starter still gets its window)."""

    def __init__(self, ring: ByteRing, idle_s: float, began: float) -> None:
        self._ring, self._idle_s, self._began = ring, idle_s, began

    def check(self, now: float) -> tuple[str | None, float | None]:
        quiet_for = now - max(self._ring.last_write, self._began)
        return (IDLE, None) if quiet_for >= self._idle_s else (None, self._idle_s - quiet_for)


class PatternSeen:
    """`pattern` matches the plain text of the output after `cursor`.

    Complete lines are converted once; the unfinished last line is converted
    again each time (a carriage return may still redraw it). So that a long
    flood of output costs each look little, a match is looked for in the
    newest `MATCH_WINDOW` characters of complete lines (cut at a line start)
    and the newest `MATCH_WINDOW` bytes of an unfinished line.
    """

    def __init__(self, ring: ByteRing, pattern: re.Pattern[str], cursor: int) -> None:
        self._ring, self._pattern = ring, pattern
        self._next = cursor  # where the output not yet converted for good begins
        self._lines = ""  # the plain text of the complete lines so far

    def check(self, now: float) -> tuple[str | None, float | None]:
        tail = b""
        while True:
            chunk = self._ring.read(self._next, _SCAN_BYTES)
            newline = chunk.data.rfind(b"\n")
            if newline >= 0:
                self._lines += plain_text(chunk.data[: newline + 1])
                self._next = chunk.cursor + newline + 1
                tail = chunk.data[newline + 1 :]
            else:
                self._next = max(chunk.cursor, chunk.next_cursor - MATCH_WINDOW)
                tail = chunk.data[self._next - chunk.cursor :]
            if chunk.next_cursor >= self._ring.end or newline < 0:
                break
        found = self._pattern.search(self._lines + plain_text(tail))
        if len(self._lines) > MATCH_WINDOW:
            line_start = self._lines.find("\n", len(self._lines) - MATCH_WINDOW) + 1
            self._lines = self._lines[line_start:]
        return (PATTERN if found else None, None)


class CommandDone:
    """The command typed last has finished (at once when none is running)."""

    def __init__(self, commands: CommandState) -> None:
        self._commands = commands

    def check(self, now: float) -> tuple[str | None, float | None]:
        return (None if self._commands.running else COMMAND_DONE, None)


def wait_for(ring: ByteRing, condition: Condition, timeout_s: float, cancelled: threading.Event) -> str:
    """Wait for `condition`, the shell's end or `timeout_s`; what ended the wait.

    Raises:
        OpError: cancelled, once `cancelled` is set (looked at every `CANCEL_CHECK_S` at least).
    """
    give_up = time.monotonic() + timeout_s
    while True:
        if cancelled.is_set():
            raise OpError(Code.CANCELLED, "the read was cancelled while it waited")
        seen = ring.version
        now = time.monotonic()
        ended, again_in = condition.check(now)
        if ended is None and ring.closed:
            ended = SHELL_EXITED
        elif ended is None and now >= give_up:
            ended = TIMEOUT
        if ended is not None:
            return ended
        left = min(give_up - now, CANCEL_CHECK_S)
        ring.wait_change(seen, left if again_in is None else min(left, again_in))
