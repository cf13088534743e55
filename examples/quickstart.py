"""roost SDK quickstart: a workspace that persists across calls, on the mock backend.

    uv run python examples/quickstart.py

The mock backend runs the workspace's agent as a plain host process: it
isolates nothing and exists for development. Drop `backend="mock"` to get the
best backend this host offers (see `roost doctor`). State goes to a temporary
ROOST_HOME here, so the example leaves nothing behind.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from roost import Roost, RoostError


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="roost-quickstart-") as scratch:
        seed = Path(scratch, "project")
        seed.mkdir()
        (seed / "greet.py").write_text("import sys\nprint('hello,', sys.argv[1])\n")

        with Roost(home=Path(scratch, "home"), backend="mock") as roost:
            # The `with` block deletes the workspace on exit, even after an error.
            with roost.create_workspace("debian:12", name="quickstart", seed_path=seed) as ws:
                print(f"workspace {ws.id} ({ws.info().backend}, isolated={ws.info().isolated})")

                # A list runs as argv; a string runs under `bash -c`.
                result = ws.exec(["python3", "greet.py", "roost"])
                print(f"exit {result.exit_code}: {result.stdout.strip()}")

                # State persists between calls: write a file, then use it.
                ws.files.write("/workspace/numbers.txt", "3\n1\n2\n")
                print("sorted:", ws.exec("sort -n numbers.txt | tr '\\n' ' '").stdout.strip())
                print("read back:", ws.files.read("/workspace/numbers.txt").text.split())

                # Stream output as it arrives instead of waiting for the end.
                def show(channel: str, data: bytes) -> None:
                    for line in data.decode(errors="replace").splitlines():
                        print(f"  [{channel}] {line}")

                ws.exec(["sh", "-c", "echo one; echo two >&2; echo three"], on_output=show)

                # Non-zero exits and timeouts are results, not exceptions.
                failed = ws.exec("exit 3")
                slow = ws.exec(["sleep", "10"], timeout=0.5)
                print(f"exit 3 -> exit_code={failed.exit_code}; sleep 10 -> timed_out={slow.timed_out}")

                # Failures roost itself reports are RoostErrors with a stable code.
                try:
                    ws.files.read("/workspace/missing.txt")
                except RoostError as exc:
                    print(f"error code {exc.code!r}: {exc.message}")

                print("history:", [entry.command for entry in ws.logs()])
            print("workspaces left:", len(roost.list_workspaces()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
