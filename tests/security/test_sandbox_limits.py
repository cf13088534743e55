"""A sandbox's limits are real: process count, memory with tmpfs pages included, tmpfs sizes
within the memory limit, and each limit either enforced or reported with the reason.

Bounded: the fork probe stops at 200 children and kills what it started; the fill probe
writes at most 2x the limit in 1 MiB steps and stops at the first failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roost import Roost
from roost.backends.sandbox import cgroups

pytestmark = pytest.mark.integration

FORK_PROBE = r"""
import errno, os, signal, sys
children, refused = [], None
for _ in range(200):
    try:
        pid = os.fork()
    except OSError as exc:
        refused = exc.errno
        break
    if pid == 0:
        signal.pause()
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(len(children), refused)
"""


def _enforcement(roost: Roost, ws_id: str) -> cgroups.Enforcement:
    """The cgroups the workspace's record names (what an operator would look up on disk)."""
    record = json.loads((roost.home / "workspaces" / ws_id / "workspace.json").read_text())
    return cgroups.Enforcement.from_json(record["boot"].get("cgroups"))


def _require(enforcement: cgroups.Enforcement, controller: str) -> None:
    if controller not in enforcement.enforced:
        pytest.skip(f"{controller} is not enforced here: {enforcement.not_enforced.get(controller)}")


def test_forks_past_the_pids_limit_are_refused(sandbox: Roost) -> None:
    ws = sandbox.create_workspace("debian:12", pids=48)
    _require(_enforcement(sandbox, ws.id), "pids")
    made, refused = ws.exec(["python3", "-c", FORK_PROBE]).stdout.split()
    assert refused == "11"  # EAGAIN
    # The agent, the probe itself and bwrap's processes count too.
    assert 0 < int(made) < 48
    assert ws.exec(["true"]).exit_code == 0  # and the workspace still works once they are gone


def test_tmpfs_is_sized_within_the_memory_limit_and_filling_it_stops_there(sandbox: Roost) -> None:
    limit_mib = 128
    ws = sandbox.create_workspace("debian:12", mem_mib=limit_mib)
    enforcement = _enforcement(sandbox, ws.id)
    sizes = ws.exec(["df", "--output=size", "-B1M", "/tmp", "/dev/shm"]).stdout.split()[1:]
    assert [int(s) for s in sizes] == [limit_mib // 2, limit_mib // 2]
    fill = ws.exec(
        ["sh", "-c", f"for i in $(seq {2 * limit_mib}); do head -c 1048576 /dev/zero >> /dev/shm/fill || exit 9; done"]
    )
    assert fill.exit_code == 9
    assert "No space left" in fill.stderr
    used = int(ws.exec(["du", "-m", "/dev/shm/fill"]).stdout.split()[0])
    assert used <= limit_mib // 2
    _require(enforcement, "memory")
    # The tmpfs pages are the workspace's memory: its cgroup counts them, and never past the limit.
    assert _memory(enforcement, "memory.usage_in_bytes", "memory.current") >= used * 1024 * 1024
    peak = _memory(enforcement, "memory.max_usage_in_bytes", "memory.peak")
    assert peak <= limit_mib * 1024 * 1024


def _memory(enforcement: cgroups.Enforcement, *names: str) -> int:
    """The first of `names` (v1, then v2 spellings) the workspace's memory cgroup has."""
    for directory in enforcement.dirs:
        for name in names:
            path = Path(directory, name)
            if path.exists():
                return int(path.read_text())
    raise AssertionError(f"no {names} in {enforcement.dirs}")


def test_memory_limit_is_written_to_the_workspace_cgroup(sandbox: Roost) -> None:
    ws = sandbox.create_workspace("debian:12", mem_mib=96, vcpus=1)
    enforcement = _enforcement(sandbox, ws.id)
    _require(enforcement, "memory")
    limits = {}
    for directory in enforcement.dirs:
        for name in ("memory.limit_in_bytes", "memory.max", "cpu.cfs_quota_us", "cpu.max"):
            path = Path(directory, name)
            if path.exists():
                limits[name] = path.read_text().split()[0]
    assert limits.get("memory.limit_in_bytes", limits.get("memory.max")) == str(96 * 1024 * 1024)
    if "cpu" in enforcement.enforced:
        assert limits.get("cpu.cfs_quota_us", limits.get("cpu.max")) == str(cgroups.CPU_PERIOD_US)
    protections = {p.name: p for p in ws.info().protections}
    assert protections["cgroup_memory"].active and "96 MiB" in protections["cgroup_memory"].detail
    # Delete leaves no cgroup behind.
    ws.delete()
    assert [d for d in enforcement.dirs if Path(d).exists()] == []


def test_a_limit_the_host_cannot_enforce_is_reported_with_the_reason(
    sandbox: Roost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cgroups, "host_version", lambda: (None, "no cgroup hierarchy is mounted"))
    ws = sandbox.create_workspace("debian:12")
    monkeypatch.undo()
    off = {p.name: p.detail for p in ws.info().protections if not p.active}
    assert set(off) == {"cgroup_memory", "cgroup_pids", "cgroup_cpu"}
    assert all("no cgroup hierarchy is mounted" in detail for detail in off.values())
    assert ws.exec(["true"]).exit_code == 0  # the workspace still runs
