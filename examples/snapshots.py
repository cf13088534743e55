"""Diff, export, snapshots and reset, driven through the SDK.

    uv run python examples/snapshots.py

Seeds a workspace from a small project, edits it, shows what changed since
the create-time baseline (summary and patch), exports the change as a patch
file and checks that `git apply` accepts it, takes a snapshot, breaks things,
and resets: first to the snapshot, then to the baseline. Runs on the mock
backend (host processes, NOT isolated) with a temporary ROOST_HOME, so it
leaves nothing behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from roost import Roost


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="roost-snapshots-") as scratch:
        seed = Path(scratch, "project")
        (seed / "src").mkdir(parents=True)
        (seed / "src" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
        (seed / "README.md").write_text("# calc\n")
        (seed / "TODO").write_text("write tests\n")

        # The baseline snapshot is taken at create, right after seeding.
        with (
            Roost(home=Path(scratch, "home"), backend="mock") as roost,
            roost.create_workspace("debian:12", name="changes", seed_path=seed) as ws,
        ):
            # Some edits: modify, add (text and binary), delete.
            ws.files.write(
                "/workspace/src/calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
            )
            ws.files.write("/workspace/tests/test_calc.py", "from calc import add\n\nassert add(1, 2) == 3\n")
            ws.files.write("/workspace/data.bin", bytes(range(256)))
            ws.files.delete("/workspace/TODO")

            summary = ws.diff(stat=True)
            print("changed since baseline:", summary.counts)
            for change in summary.changes:
                print(f"  {change.change:<9} {change.kind:<5} {change.path}{' (binary)' if change.binary else ''}")

            only_src = ws.diff(paths=["src"])
            print("patch of src/:")
            print("  " + only_src.patch.rstrip().replace("\n", "\n  "))

            # Export the whole change as a patch and check that git applies it to the seed.
            patch_file = Path(scratch, "changes.patch")
            exported = ws.export("/workspace", patch_file, format="patch")
            print(f"exported a patch of {exported.files} changed paths, {exported.bytes} bytes")
            if shutil.which("git"):
                check = subprocess.run(
                    ["git", "apply", "--check", str(patch_file)], cwd=seed, capture_output=True, text=True
                )
                print("git apply --check on the seed:", "ok" if check.returncode == 0 else check.stderr.strip())
                if check.returncode != 0:
                    return 1

            # Export files too: a directory copy and a tar (outputs must not exist yet).
            ws.export("src", Path(scratch, "src-copy"))
            ws.export("/workspace", Path(scratch, "workspace.tar"), format="tar")
            print("exported src/ as files:", sorted(p.name for p in Path(scratch, "src-copy").iterdir()))

            # A snapshot of the good state, then break things.
            snap = ws.snapshots.create("good")
            print(f"snapshot {snap.name}: {snap.files} files, {snap.stored_bytes} bytes newly stored")
            ws.exec("rm -rf src && echo oops > README.md")
            service = ws.services.start("sleeper", ["sleep", "60"])
            shell = ws.shells.open()
            print("broken:", ws.diff(against="good", stat=True).counts)

            # Reset stops services and closes shells first, and says so.
            back = ws.reset(snapshot="good")
            print(
                f"reset to {back.snapshot}: {back.restored} restored, {back.removed} removed; "
                f"stopped services {list(back.stopped_services)}, closed shells {list(back.closed_shells)}"
            )
            if ws.diff(against="good", stat=True).changes:
                raise SystemExit("the reset left differences")
            if service.name not in back.stopped_services or shell.id not in back.closed_shells:
                raise SystemExit("reset did not report the service and shell it ended")

            # All the way back to the seed.
            ws.reset()
            print("after reset to baseline:", ws.diff(stat=True).counts or "no changes")
            print("snapshots:", [s.name for s in ws.snapshots.list()])
            ws.snapshots.delete("good")
    print("snapshots example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
