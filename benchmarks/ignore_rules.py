"""`ws.diff(stat=True)` of a 20,000-file workspace, 18,000 of them in an ignored node_modules, mock backend.

Measured with and without `gitignore=True` (the tree's `.gitignore` says
`node_modules/`), in two states: *warm*, nothing changed since the last
scan (every file costs one stat unless its directory is pruned), and
*reinstalled*, every file under node_modules rewritten before each round
(as `npm install` does: without the rule each one is hashed again).
Target: with the rule faster than without, in both states (medians).
20 tracked source files change in each round either way. Both diffs name
`paths=["src"]`, so both answers list the same 20 files: that filter is
applied after the scan, which still lists (and, reinstalled, hashes)
all of node_modules unless the rule prunes it.

The tree is written straight into the mock workspace's host directory and
snapshotted as `base`; diffs are against `base`. `--quick` builds a tenth
of the tree and runs fewer rounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._harness import BACKEND, ENV, Result, Settings, summarize, temp_home

if TYPE_CHECKING:
    from roost import Workspace

DESCRIPTION = "SDK ws.diff(stat) of 20,000 files, 18,000 in node_modules, with and without gitignore, mock"
FILES, IGNORED_SHARE, PER_DIR, CHANGED, FILE_BYTES = 20_000, 0.9, 100, 20, 2048


def _write(root: Path, files: int) -> tuple[list[Path], list[Path]]:
    """Source files and node_modules files (with a .gitignore); returns both lists."""
    (root / ".gitignore").write_text("node_modules/\n*.log\n")
    ignored_count = int(files * IGNORED_SHARE)
    sources, modules = [], []
    for index in range(files):
        in_modules = index < ignored_count
        folder = root / ("node_modules" if in_modules else "src") / f"d{index // PER_DIR:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"f{index:05d}.js"
        path.write_bytes(f"// {index}\n".encode().ljust(FILE_BYTES, b"x"))
        (modules if in_modules else sources).append(path)
    return sources, modules


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _measure(ws: Workspace, sources: list[Path], modules: list[Path], settings: Settings) -> dict[str, Any]:
    rounds = settings.n(7, 2)
    changed = sources[:: max(1, len(sources) // CHANGED)][:CHANGED]
    ws.snapshots.create("base")
    numbers: dict[str, Any] = {}
    for state in ("warm", "reinstalled"):
        for label, rules in (("without_rule", {}), ("with_gitignore", {"gitignore": True})):
            samples = []
            ws.diff(against="base", stat=True, paths=["src"], **rules)  # fill the stat cache for this state
            for round_ in range(rounds):
                for path in changed:
                    path.write_bytes(f"// round {round_} {label}\n".encode().ljust(FILE_BYTES, b"y"))
                if state == "reinstalled":
                    for path in modules:
                        path.write_bytes(f"// {state} {round_} {label}\n".encode().ljust(FILE_BYTES, b"z"))
                samples.append(_timed(lambda r=rules: ws.diff(against="base", stat=True, paths=["src"], **r)))
            numbers[f"{state}_{label}_s"] = summarize(samples)
        ratio = numbers[f"{state}_without_rule_s"]["median"] / numbers[f"{state}_with_gitignore_s"]["median"]
        numbers[f"{state}_speedup"] = round(ratio, 1)
    found = ws.diff(against="base", stat=True, gitignore=True).changes
    root = sources[0].parents[2]
    if {c.path for c in found} != {str(p.relative_to(root)) for p in changed}:
        raise RuntimeError(f"the filtered diff lists {len(found)} paths, not the {len(changed)} changed sources")
    numbers["rounds"] = rounds
    return numbers


def run(settings: Settings) -> Result:
    from roost import Roost

    files = settings.n(FILES, FILES // 10)
    with temp_home() as home, Roost(home=home, backend=BACKEND) as roost:
        ws = roost.create_workspace(ENV)
        try:
            started = time.perf_counter()
            sources, modules = _write(home / "workspaces" / ws.id / "workspace", files)
            generate_s = time.perf_counter() - started
            numbers = _measure(ws, sources, modules, settings)
        finally:
            ws.delete(force=True)
    targets = [
        {
            "metric": f"{state}_with_gitignore_s.median",
            "op": "<",
            "value": numbers[f"{state}_without_rule_s"]["median"],
            "met": numbers[f"{state}_with_gitignore_s"]["median"] < numbers[f"{state}_without_rule_s"]["median"],
        }
        for state in ("warm", "reinstalled")
    ]
    return {
        "description": DESCRIPTION,
        "unit": "s",
        "files": files,
        "ignored_files": len(modules),
        "generate_tree_s": round(generate_s, 2),
        **numbers,
        "targets": targets,
        "met": all(t["met"] for t in targets),
    }


def benchmarks() -> dict[str, tuple[str, Callable[[Settings], Result]]]:
    return {"diff_with_ignored_node_modules_20k_files": (DESCRIPTION, run)}


if __name__ == "__main__":  # `python -m benchmarks.ignore_rules [--quick]`: this one alone
    import json
    import sys

    print(json.dumps(run(Settings(quick="--quick" in sys.argv[1:])), indent=2))
