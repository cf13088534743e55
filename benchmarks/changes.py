"""Diff, snapshot and reset of a 10,000-file, 200 MB workspace with 10 changed files, mock backend.

Targets (medians): `ws.diff()` < 0.5 s, `ws.snapshots.create()` < 0.3 s, `ws.reset()` < 0.3 s.
Reported beside them, from the same run on the same trees: `git diff --no-index` (with
`--stat`, and the full patch) between a copy of the original tree and the changed one,
and how many times slower it is than `ws.diff()`; the bytes each snapshot stores (new
content plus its manifest).

The tree is written straight into the mock workspace's host directory, then
snapshotted as `base` (the workspace's own baseline was taken empty, at create);
diffs and resets are against `base`. Files are base64 text of random bytes (so
patches are text and nothing compresses away), ~20 KB each, 100 per directory.
Everything lives in one temporary directory, removed at the end.

`--quick` builds a tenth of the tree (1,000 files, 20 MB) and runs fewer rounds:
a smoke run of the same code, whose numbers are not comparable with the full run.
"""

from __future__ import annotations

import base64
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._harness import BACKEND, ENV, Result, Settings, summarize, temp_home

if TYPE_CHECKING:
    from roost import Workspace

DESCRIPTION = "SDK ws.diff / snapshots.create / reset of a 10,000-file, 200 MB workspace with 10 changed files, mock"
FILES, TOTAL_BYTES, PER_DIR, CHANGED = 10_000, 200_000_000, 100, 10
TARGETS = {"diff_s": 0.5, "snapshot_create_s": 0.3, "reset_s": 0.3}


def _write_tree(root: Path, files: int, total_bytes: int) -> int:
    """`files` text files of about total_bytes/files bytes each; returns the bytes written."""
    rng = random.Random(7)
    per_file = total_bytes // files
    written = 0
    for index in range(files):
        directory = root / f"d{index // PER_DIR:03d}"
        if index % PER_DIR == 0:
            directory.mkdir(parents=True)
        size = rng.randint(per_file // 2, per_file * 3 // 2)
        data = base64.encodebytes(rng.randbytes(size * 3 // 4))  # 76-column lines
        (directory / f"f{index:05d}.txt").write_bytes(data)
        written += len(data)
    return written


def _changed_paths(files: int) -> list[str]:
    step = files // CHANGED
    return [f"d{(i * step) // PER_DIR:03d}/f{i * step:05d}.txt" for i in range(CHANGED)]


def _change(root: Path, paths: list[str], round_: int) -> None:
    """Edit one line in the middle of each file, as a person or a tool would."""
    for rel in paths:
        path = root / rel
        lines = path.read_bytes().split(b"\n")
        lines[len(lines) // 2] = f"edited in round {round_}".encode()
        path.write_bytes(b"\n".join(lines))


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _git_diff(original: Path, changed: Path, *flags: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        ["git", "diff", "--no-index", *flags, str(original), str(changed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 1:  # 1: differences found, as they must be
        raise RuntimeError(f"git diff --no-index exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _measure(ws: Workspace, ws_dir: Path, original: Path, settings: Settings, files: int) -> dict[str, Any]:
    root = ws_dir / "workspace"
    agent = ws_dir / "agent"
    paths = _changed_paths(files)
    rounds = settings.n(10, 3)

    base_seconds = _timed(lambda: ws.snapshots.create("base"))
    blobs_after_base = _dir_bytes(agent / "blobs")
    _change(root, paths, 0)

    started = time.perf_counter()
    first = ws.diff(against="base")  # hashes the 10 changed files; later diffs find them in the stat cache
    first_diff_s = time.perf_counter() - started
    if len(first.changes) != CHANGED or first.truncated:
        raise RuntimeError(f"expected {CHANGED} changed files, got {len(first.changes)} (truncated={first.truncated})")
    diff_samples = [_timed(lambda: ws.diff(against="base")) for _ in range(rounds)]
    git_rounds = settings.n(3, 1)
    git_stat = [_git_diff(original, root, "--stat") for _ in range(git_rounds)]
    git_full = [_git_diff(original, root) for _ in range(git_rounds)]

    snapshot_samples, stored, manifests = [], [], []
    for index in range(rounds):
        started = time.perf_counter()
        info = ws.snapshots.create(f"s{index}")
        snapshot_samples.append(time.perf_counter() - started)
        stored.append(info.stored_bytes or 0)
        manifests.append((agent / "snapshots" / f"s{index}.json").stat().st_size)
    blobs_after_snapshots = _dir_bytes(agent / "blobs")

    reset_samples, restored = [], []
    for index in range(rounds):
        _change(root, paths, index + 1)
        started = time.perf_counter()
        result = ws.reset(snapshot="base")
        reset_samples.append(time.perf_counter() - started)
        restored.append(result.restored)
    if ws.diff(against="base", stat=True).changes:
        raise RuntimeError("reset left differences behind")

    diff_median = statistics.median(diff_samples)
    return {
        "base_snapshot_s": round(base_seconds, 3),
        "blobs_after_base_bytes": blobs_after_base,
        "first_diff_after_changes_s": round(first_diff_s, 3),
        "diff_s": summarize(diff_samples),
        "git_diff_no_index_stat_s": summarize(git_stat),
        "git_diff_no_index_full_s": summarize(git_full),
        "git_stat_over_roost_diff": round(statistics.median(git_stat) / diff_median, 1),
        "git_full_over_roost_diff": round(statistics.median(git_full) / diff_median, 1),
        "snapshot_create_s": summarize(snapshot_samples),
        "snapshot_stored_bytes": stored,
        "snapshot_manifest_bytes": manifests,
        "bytes_per_unchanged_snapshot": statistics.median(s + m for s, m in zip(stored[1:], manifests[1:], strict=True))
        if rounds > 1
        else None,
        "blob_growth_over_snapshots_bytes": blobs_after_snapshots - blobs_after_base,
        "reset_s": summarize(reset_samples),
        "reset_restored_files": restored,
        "rounds": rounds,
    }


def run(settings: Settings) -> Result:
    from roost import Roost

    files = settings.n(FILES, FILES // 10)
    total = settings.n(TOTAL_BYTES, TOTAL_BYTES // 10)
    scratch = Path(tempfile.mkdtemp(prefix="roost-bench-changes-"))
    try:
        original = scratch / "original"
        started = time.perf_counter()
        written = _write_tree(original, files, total)
        generate_s = time.perf_counter() - started
        with temp_home() as home, Roost(home=home, backend=BACKEND) as roost:
            ws = roost.create_workspace(ENV)
            try:
                ws_dir = home / "workspaces" / ws.id
                root = ws_dir / "workspace"
                subprocess.run(["cp", "-a", "--reflink=auto", f"{original}/.", str(root)], check=True, timeout=300)
                numbers = _measure(ws, ws_dir, original, settings, files)
            finally:
                ws.delete(force=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    targets = [
        {"metric": f"{name}.median", "op": "<", "value": limit, "met": numbers[name]["median"] < limit}
        for name, limit in TARGETS.items()
    ]
    return {
        "description": DESCRIPTION,
        "unit": "s",
        "files": files,
        "tree_bytes": written,
        "changed_files": CHANGED,
        "generate_tree_s": round(generate_s, 2),
        **numbers,
        "targets": targets,
        "met": all(t["met"] for t in targets),
    }


def benchmarks() -> dict[str, tuple[str, Callable[[Settings], Result]]]:
    return {"workspace_changes_10k_files": (DESCRIPTION, run)}


if __name__ == "__main__":  # `python -m benchmarks.changes [--quick]`: this one alone
    import json
    import sys

    print(json.dumps(run(Settings(quick="--quick" in sys.argv[1:])), indent=2))
