"""`roost workspace shell attach`: put a human's terminal on a workspace shell.

Raw mode in, output streamed out, window size changes forwarded, Ctrl-]
detaches and leaves the shell running. Only for interactive terminals.

Imports: client, errors and the standard library.
"""

from __future__ import annotations

import os
import signal
import sys
import termios
import threading
import tty
from types import FrameType

from roost.client import Workspace
from roost.errors import InvalidArgument

DETACH_KEY = b"\x1d"  # Ctrl-]


def _terminal_size() -> tuple[int, int]:
    """The terminal's size, or 120x32 when it reports none (some terminals say 0x0)."""
    cols, rows = os.get_terminal_size()
    return (cols or 120, rows or 32)


def _pick(workspace: Workspace, shell_id: str | None) -> str:
    if shell_id:
        return shell_id
    running = [s for s in workspace.shells.list() if s.state == "running"]
    if running:
        return running[-1].id
    cols, rows = _terminal_size()
    return workspace.shells.open(cols=cols, rows=rows).id


def attach(workspace: Workspace, shell_id: str | None) -> int:
    """Attach until detach (Ctrl-]) or the shell ends.

    Raises:
        InvalidArgument: stdin or stdout is not a terminal.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InvalidArgument("attach needs an interactive terminal", hint="agents should use shell read/write instead")
    target = _pick(workspace, shell_id)
    stop = threading.Event()
    out = sys.stdout.buffer

    def show(data: bytes) -> None:
        out.write(data)
        out.flush()

    def resize(_signum: int = 0, _frame: FrameType | None = None) -> None:
        cols, rows = _terminal_size()
        workspace.shells.resize(target, cols, rows)

    resize()
    streamer = threading.Thread(
        target=lambda: workspace.shells.attach(target, show, stop, cursor=0), name="attach-out", daemon=True
    )
    saved = termios.tcgetattr(sys.stdin.fileno())
    previous = signal.signal(signal.SIGWINCH, resize)
    sys.stderr.write(f"roost: attached to {target}; Ctrl-] detaches\r\n")
    try:
        tty.setraw(sys.stdin.fileno())
        streamer.start()
        while not stop.is_set():
            data = os.read(sys.stdin.fileno(), 4096)
            if not data or DETACH_KEY in data:
                before = data.split(DETACH_KEY, 1)[0]
                if before:
                    workspace.shells.write(target, before, newline=False)
                break
            workspace.shells.write(target, data, newline=False)
    finally:
        stop.set()
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        streamer.join(timeout=2)
    sys.stderr.write(f"\r\nroost: detached from {target} (it keeps running)\n")
    return 0
