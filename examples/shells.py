"""PTY shells that keep their state between calls, driven through the SDK.

    uv run python examples/shells.py

Opens a bash in a workspace, changes directory and exports a variable in one
write and uses both in the next, reads the output as plain text with a byte
cursor, interrupts a running `sleep` the way Ctrl-C would, and closes the
shell. Runs on the mock backend (host processes, NOT isolated) with a
temporary ROOST_HOME, so it leaves nothing behind.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from roost import Roost, Workspace


def read_until(ws: Workspace, shell_id: str, cursor: int, marker: str, timeout: float = 10.0) -> tuple[str, int]:
    """Read from `cursor` until `marker` shows up; return the text and the next cursor.

    `wait_for_idle_ms` makes each read return once the shell has been quiet
    for 200 ms, so this loop rarely needs more than one pass.
    """
    text = ""
    deadline = time.monotonic() + timeout
    while marker not in text:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {marker!r}; got {text!r}")
        out = ws.shells.read(shell_id, cursor=cursor, plain=True, wait_for_idle_ms=200, timeout_ms=2000)
        if out.dropped:
            print(f"  ({out.dropped} bytes were overwritten before this read)")
        text += out.data
        cursor = out.next_cursor
        if out.state != "running":
            raise SystemExit(f"the shell is {out.state}: {text!r}")
    return text, cursor


def line_with(text: str, needle: str) -> str:
    """The last line of `text` that contains `needle` (the echoed command line does not)."""
    return [line for line in text.splitlines() if needle in line][-1].strip()


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="roost-shells-") as scratch,
        Roost(home=Path(scratch, "home"), backend="mock") as roost,
        roost.create_workspace("debian:12", name="shells") as ws,
    ):
        ws.files.write("/workspace/src/app.txt", "hello from app.txt\n")

        shell = ws.shells.open(cols=100, rows=30)
        print(f"opened {shell.id} ({shell.state}, {shell.cols}x{shell.rows}, cwd {shell.cwd})")

        # 1. State carries over between writes: cd and export in one call, use them in the next.
        ws.shells.write(shell.id, "cd src && export GREETING=hi")
        ws.shells.write(shell.id, 'echo "$GREETING: $(cat app.txt) [in $(basename "$PWD")]"')
        text, cursor = read_until(ws, shell.id, 0, "[in src]")
        print("shell said:", line_with(text, "[in src]"))

        # 2. Interrupt a long-running foreground job, then check how it ended.
        ws.shells.write(shell.id, "sleep 30")
        time.sleep(0.2)  # let bash start it
        started = time.monotonic()
        sent = ws.shells.signal(shell.id, "INT")
        ws.shells.write(shell.id, 'echo "sleep ended with status $?"')
        text, cursor = read_until(ws, shell.id, cursor, "ended with status 1")
        took = time.monotonic() - started
        print(f"sent SIG{sent}: {line_with(text, 'ended with status 1')} after {took:.1f}s")
        if took > 10:
            raise SystemExit("the interrupt did not stop sleep")

        # 3. The terminal size follows resize; programs in the shell see it.
        ws.shells.resize(shell.id, 80, 24)
        ws.shells.write(shell.id, "echo size=$(stty size)")
        text, cursor = read_until(ws, shell.id, cursor, "size=24 80")
        print("after resize:", "size=24 80")

        # 4. Records list every shell with its state; close ends it (HUP, then KILL).
        print("shells:", [(s.id, s.state) for s in ws.shells.list()])
        closed = ws.shells.close(shell.id)
        print(f"closed {closed.id}: state {closed.state}")
        if closed.state != "closed":
            raise SystemExit(f"expected a closed shell, got {closed.state}")
    print("shells example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
