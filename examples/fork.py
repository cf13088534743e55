"""Fork a prepared workspace into several independent ones, driven through the SDK.

    uv run python examples/fork.py

Prepares a workspace (a small project, a service kept by its restart policy),
forks it into three, tries a different fix in each, keeps the one whose
check passes and deletes the rest. Each child holds the parent's
/workspace as its own baseline, so `diff` shows only what that child did;
writes in one never show in another; deleting the parent leaves the
children whole. Runs on the mock backend (host processes, NOT isolated)
with a temporary ROOST_HOME, so it leaves nothing behind.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from roost import Roost

CHECK = "python3 -B -c 'from calc import add; assert add(2, 3) == 5'"
FIXES = {
    "plus": "def add(a, b):\n    return a + b\n",
    "twice": "def add(a, b):\n    return 2 * a\n",
    "minus": "def add(a, b):\n    return a - b\n",
}


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="roost-fork-") as scratch,
        Roost(home=Path(scratch, "home"), backend="mock") as roost,
    ):
        parent = roost.create_workspace("debian:12", name="prepared", ephemeral=False)
        parent.files.write("calc.py", "def add(a, b):\n    return a * b\n")  # the bug to fix
        parent.services.start("keeper", ["sleep", "600"], restart="always")
        parent.shells.open()
        forked = parent.fork(len(FIXES), name_prefix="try", labels={"experiment": "add"})
        print(
            f"forked {forked.result.parent} into {len(forked)}: {forked.result.files} file(s); "
            f"not copied: {forked.result.shells_not_copied} shell(s)"
        )
        passed = []
        for (fix, source), child in zip(FIXES.items(), forked, strict=True):
            info = child.info()
            started = info.last_start.services if info.last_start else ()
            child.files.write("calc.py", source)
            ok = child.exec(CHECK).exit_code == 0
            changed = [c.path for c in child.diff(stat=True).changes]
            print(
                f"{info.name} (parent {info.parent}, services {list(started)}): fix {fix!r}, changed {changed}, "
                f"check {'passed' if ok else 'failed'}"
            )
            if ok:
                passed.append(child)
        if parent.files.read("calc.py").text != "def add(a, b):\n    return a * b\n":
            raise SystemExit("a child's write reached the parent")
        parent.delete()
        winners = [child.info().name for child in passed]
        for child in forked:
            if child not in passed:
                child.delete()
        print(f"kept {winners}; it still reads: {passed[0].files.read('calc.py').text.splitlines()[1].strip()}")
        print("workspaces left:", sorted(str(i.name) for i in roost.list_workspaces()))
        for child in passed:
            child.delete()
    print("fork example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
