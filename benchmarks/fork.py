"""Workspace fork at real-project scale, on the sandbox and the mock backend.

- `fork_20k_<backend>`: a workspace holding 20,000 files (~100 MB) in its
  baseline is forked into 1 child (< 0.5 s) and into 10 (< 3 s), per round;
  what each child adds to the disk is measured beside it: the bytes of every
  file under the children's workspace directories whose inode the parent
  does not hold too, each inode once, divided by the children (the shared
  content packs cost nothing; each child's own /workspace files and
  manifests do), and the content store's share of that.

Targets are on medians. Each timed fork starts on a settled disk (the previous
children's trees removed, dirty pages written). `--quick` forks a tenth of the tree, once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import sandbox
from benchmarks._harness import ENV, Result, Settings, skipped, summarize
from benchmarks.scale import Record, median_of, settle
from benchmarks.scale_trees import write_in_workspace

if TYPE_CHECKING:
    from roost import Roost, Workspace

BACKENDS = ("sandbox", "mock")
TREE_FILES, TREE_BYTES = 20_000, 100_000_000
DESCRIPTION = "fork a 20,000-file (~100 MB) workspace into 1 and into 10 children, and the disk each adds, {backend}"
TARGETS_S = {"fork_1_s": 0.5, "fork_10_s": 3.0}


def _inodes(directories: Iterable[Path]) -> dict[tuple[int, int], tuple[int, str]]:
    """Every file below `directories` by (device, inode): its allocated bytes and its path."""
    found: dict[tuple[int, int], tuple[int, str]] = {}
    for top in directories:
        for folder, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                st = os.lstat(path)
                found[(st.st_dev, st.st_ino)] = (st.st_blocks * 512, path)
    return found


def _added_per_child(roost: Roost, parent: Workspace, children: list[Workspace]) -> tuple[int, int]:
    """(bytes, of which content store bytes) each child adds on average, shared inodes counted once."""
    root = roost.home / "workspaces"
    theirs = _inodes([root / parent.id])
    ours = {key: value for key, value in _inodes(root / child.id for child in children).items() if key not in theirs}
    total = sum(size for size, _ in ours.values())
    stored = sum(size for size, path in ours.values() if f"{os.sep}blobs{os.sep}" in path)
    return total // len(children), stored // len(children)


def _forked(parent: Workspace, count: int) -> tuple[float, list[Workspace]]:
    started = time.perf_counter()
    made = list(parent.fork(count, snapshot="tree"))
    return time.perf_counter() - started, made


def _fork(backend: str, settings: Settings) -> Result:
    record = Record(DESCRIPTION.format(backend=backend))
    files, size = settings.n(TREE_FILES, TREE_FILES // 10), settings.n(TREE_BYTES, TREE_BYTES // 10)
    rounds = settings.n(3, 1)
    samples: dict[str, list[float]] = {name: [] for name in TARGETS_S}
    added: list[tuple[int, int]] = []
    with sandbox.roost_on(backend) as roost:
        parent = roost.create_workspace(ENV)
        try:
            write_in_workspace(parent, "tree", files, size, salt=7)
            parent.snapshots.create("tree")
            for index in range(rounds):
                with record.phase(f"round_{index}"):
                    for count, name in ((1, "fork_1_s"), (10, "fork_10_s")):
                        settle(roost.home, timeout=120)  # the last round's deleted children gone, pages written
                        seconds, made = _forked(parent, count)
                        samples[name].append(seconds)
                        if count == 10:
                            added.append(_added_per_child(roost, parent, made))
                        for child in made:
                            child.delete(force=True)
        finally:
            parent.delete(force=True)
    for name, values in samples.items():
        if values:
            record.numbers[name] = summarize(values)
    if added:
        record.numbers["added_bytes_per_child"] = sorted(total for total, _ in added)[len(added) // 2]
        record.numbers["added_store_bytes_per_child"] = sorted(stored for _, stored in added)[len(added) // 2]
    for name, limit in TARGETS_S.items():
        record.target(f"{name}.median", median_of(record, name), "<", limit)
    return record.result(files=files, tree_bytes=size, backend=backend, rounds=rounds)


def _bench(backend: str) -> tuple[str, Callable[[Settings], Result]]:
    description = DESCRIPTION.format(backend=backend)

    def run(settings: Settings) -> Result:
        reason = sandbox.why_not_on(backend)
        return skipped(description, reason) if reason else _fork(backend, settings)

    return description, run


def benchmarks() -> dict[str, tuple[str, Callable[[Settings], Result]]]:
    """Every fork benchmark by name, for `benchmarks.__main__.BENCHMARKS`."""
    return {f"fork_20k_{backend}": _bench(backend) for backend in BACKENDS}
