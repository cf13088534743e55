"""`roost workspace exec -t` (and `-it`): a command on a PTY in the workspace, as `docker exec -it` runs one.

It runs over the shells machinery: a shell whose process is the command
itself (not an interactive bash). Its output streams to this terminal; with
`-i`, this process's stdin is forwarded as typed (the local terminal in raw
mode, so Ctrl-C travels as a byte and the workspace's terminal turns it into
SIGINT for the command); window size changes are forwarded; the command's
exit status becomes this process's. The shell is closed when the command
ends or this process is interrupted.

Imports: client, models, errors and the standard library.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType

from roost.client import Workspace
from roost.errors import RoostError
from roost.models import ShellInfo

END_OF_INPUT = b"\x04"  # what a terminal sends for Ctrl-D: EOF for the command reading its tty
POLL_SECONDS = 0.1
DEFAULT_SIZE = (80, 24)


@dataclass(frozen=True)
class PtyExec:
    """What to run on the PTY and how to start it."""

    argv: Sequence[str]
    interactive: bool
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: Sequence[str] = ()
    secret_files: Sequence[str] = ()


def _size() -> tuple[int, int]:
    """This terminal's size (stdout's, else stdin's), or 80x24 when neither is a terminal."""
    for stream in (sys.stdout, sys.stdin):
        try:
            cols, rows = os.get_terminal_size(stream.fileno())
        except (OSError, ValueError):
            continue
        if cols and rows:
            return cols, rows
    return DEFAULT_SIZE


@contextlib.contextmanager
def _raw_stdin(wanted: bool) -> Iterator[None]:
    """Put stdin's terminal in raw mode for the duration (nothing when not wanted or not a terminal)."""
    fd = sys.stdin.fileno()
    if not (wanted and os.isatty(fd)):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSADRAIN)  # keep what was typed ahead (the default flushes it)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _forward_resizes(workspace: Workspace, shell_id: str) -> Iterator[None]:
    def resize(_signum: int = 0, _frame: FrameType | None = None) -> None:
        cols, rows = _size()
        with contextlib.suppress(RoostError):  # the command may just have ended
            workspace.shells.resize(shell_id, cols, rows)

    previous = signal.signal(signal.SIGWINCH, resize)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _forward_stdin(workspace: Workspace, shell_id: str, ended: threading.Event) -> None:
    """Send what is typed (or piped) to the command until it ends; EOF on stdin becomes Ctrl-D."""
    fd = sys.stdin.fileno()
    while not ended.is_set():
        ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
        if not ready:
            continue
        data = os.read(fd, 4096)
        with contextlib.suppress(RoostError):  # the command ended between the read and the write
            workspace.shells.write(shell_id, data or END_OF_INPUT, newline=False)
        if not data:
            ended.wait()
            return


def _final_state(workspace: Workspace, shell_id: str, last: ShellInfo) -> ShellInfo:
    """The shell once its end is recorded (the output stream may close a moment before)."""
    state = last
    for _ in range(50):
        if state.state != "running":
            return state
        time.sleep(POLL_SECONDS)
        state = next((s for s in workspace.shells.list() if s.id == shell_id), state)
    return state


def exit_status(info: ShellInfo) -> int:
    """The command's exit code, 128 + the signal number for a signalled one (as a shell reports it)."""
    if info.exit_code is not None:
        return info.exit_code
    if info.signal:
        with contextlib.suppress(KeyError):
            return 128 + int(signal.Signals[info.signal])
    return 1


def run_on_pty(workspace: Workspace, spec: PtyExec) -> int:
    """Run the command on a PTY with this terminal attached; return its exit status."""
    cols, rows = _size()
    shell = workspace.shells.open(
        command=list(spec.argv),
        cwd=spec.cwd,
        cols=cols,
        rows=rows,
        env=spec.env,
        secret_env=spec.secret_env,
        secret_files=spec.secret_files,
    )
    out = sys.stdout.buffer
    ended = threading.Event()

    def show(data: bytes) -> None:
        out.write(data)
        out.flush()

    typing = threading.Thread(target=_forward_stdin, args=(workspace, shell.id, ended), daemon=True)
    try:
        with _raw_stdin(spec.interactive), _forward_resizes(workspace, shell.id):
            if spec.interactive:
                typing.start()
            last = workspace.shells.attach(shell.id, show, threading.Event(), cursor=0)
            ended.set()
        return exit_status(_final_state(workspace, shell.id, last))
    finally:
        ended.set()
        with contextlib.suppress(RoostError):
            workspace.shells.close(shell.id)
