"""PTY shells that keep their state between calls, driven through the SDK as an agent would.

    uv run python examples/shells.py

Opens a bash in a workspace and runs command lines in it one call each
(`shells.run`: type the line, wait in the agent until its prompt is back,
get its output and exit status), so `cd` and `export` carry over to the
next line; waits for a pattern in a program's output; gives up on a long
`sleep` after a short timeout, interrupts it the way Ctrl-C would and reads
how it ended; resizes the terminal; closes the shell. Runs on the mock
backend (host processes, NOT isolated) with a temporary ROOST_HOME, so it
leaves nothing behind.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from roost import Roost
from roost.models import ShellOutput


def last_line(out: ShellOutput) -> str:
    """The last line the command printed (the first line is the echo of what was typed)."""
    return out.data.rstrip("\n").splitlines()[-1].strip()


def check(out: ShellOutput, ended_by: str, exit_code: int | None) -> None:
    if (out.ended_by, out.exit_code) != (ended_by, exit_code):
        raise SystemExit(f"expected {ended_by} with {exit_code}, got {out.ended_by} with {out.exit_code}: {out.data!r}")


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="roost-shells-") as scratch,
        Roost(home=Path(scratch, "home"), backend="mock") as roost,
        roost.create_workspace("debian:12", name="shells") as ws,
    ):
        ws.files.write("/workspace/src/app.txt", "hello from app.txt\n")
        shell = ws.shells.open(cols=100, rows=30)
        print(f"opened {shell.id} ({shell.state}, {shell.cols}x{shell.rows}, cwd {shell.cwd})")

        # 1. One call per command line; the shell keeps its directory and variables in between.
        check(ws.shells.run(shell.id, "cd src && export GREETING=hi", plain=True), "command_done", 0)
        out = ws.shells.run(shell.id, 'echo "$GREETING: $(cat app.txt) [in $(basename "$PWD")]"', plain=True)
        check(out, "command_done", 0)
        print("shell said:", last_line(out))
        out = ws.shells.run(shell.id, "test -e missing.txt", plain=True)
        check(out, "command_done", 1)
        print(f"test -e missing.txt: exit {out.exit_code}")

        # 2. Wait for a line a program prints, while it keeps running.
        # (The port is computed so that the echo of the typed line cannot match the pattern; one process
        # prints and then becomes the sleep, as a server would, so Ctrl-C below reaches it.)
        server = "sh -c 'sleep 0.2; echo listening on port $((8000+80)); exec sleep 30'"
        start = ws.shells.write(shell.id, server, and_wait=True, timeout_ms=50)
        check(start, "timeout", None)  # still running: it was only given 50 ms
        seen = ws.shells.read(shell.id, cursor=start.cursor, until_pattern=r"listening on port \d+", plain=True)
        print(f"waited for the pattern: ended by {seen.ended_by}")
        if "port 8080" not in seen.data:
            raise SystemExit(f"the pattern wait ended before the line: {seen.data!r}")

        # 3. Interrupt it the way Ctrl-C would, then read how it ended.
        sent = ws.shells.signal(shell.id, "INT")
        done = ws.shells.read(shell.id, cursor=seen.next_cursor, until_command_done=True, timeout_ms=10_000)
        check(done, "command_done", 130)
        print(f"sent SIG{sent}: sleep ended with status {done.exit_code}")

        # 4. The terminal size follows resize; programs in the shell see it.
        ws.shells.resize(shell.id, 80, 24)
        print("after resize:", last_line(ws.shells.run(shell.id, "stty size", plain=True)))

        # 5. Records list every shell with its state; close ends it (HUP, then KILL).
        print("shells:", [(s.id, s.state) for s in ws.shells.list()])
        closed = ws.shells.close(shell.id)
        print(f"closed {closed.id}: state {closed.state}")
        if closed.state != "closed":
            raise SystemExit(f"expected a closed shell, got {closed.state}")
    print("shells example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
