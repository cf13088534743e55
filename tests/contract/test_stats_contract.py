"""`ws.stats()` on every backend: the numbers move when the workspace allocates memory and writes files,
its limits are the ones it runs under, and what cannot be known is None, never a guess."""

from __future__ import annotations

import os

import pytest

from roost import Readiness, Roost, RoostError, Workspace

MIB = 1024 * 1024
# bash keeps the 64 MiB string in a variable while it waits for its sleep; `held` says it has it.
HOLD_64_MIB = "x=$(head -c 67108864 /dev/zero | tr '\\0' a); touch held; sleep 1000; echo ${#x}"


def test_stats_move_when_the_workspace_allocates_memory_and_writes_files(
    roost: Roost, workspace: Workspace, backend: str
) -> None:
    before = workspace.stats()
    workspace.services.start("hog", HOLD_64_MIB, ready=Readiness(file="held", timeout_s=30))
    workspace.exec("head -c 8388608 /dev/urandom > blob && sync")

    after = workspace.stats()

    assert after.id == workspace.id
    assert before.memory_bytes is not None and after.memory_bytes is not None
    assert after.memory_bytes - before.memory_bytes >= 60 * MIB
    assert before.workspace_disk_bytes is not None and after.workspace_disk_bytes is not None
    assert after.workspace_disk_bytes - before.workspace_disk_bytes >= 8 * MIB
    if after.disk_bytes is None:
        # As a normal user, a sandbox's directory holds files of its other (subordinate) ids that roost's
        # user cannot read: the total is unknown, and said so rather than undercounted.
        assert (backend, os.geteuid() != 0) == ("sandbox", True)
    else:
        assert after.disk_bytes >= after.workspace_disk_bytes
    assert before.pids is not None and after.pids is not None and after.pids > before.pids
    assert before.cpu_seconds is not None and after.cpu_seconds is not None
    assert after.cpu_seconds >= before.cpu_seconds
    if after.memory_peak_bytes is not None:  # a process tree keeps none (mock); a cgroup does
        assert after.memory_peak_bytes >= after.memory_bytes
    else:
        assert after.source == "process tree"


def test_stats_show_the_limits_the_workspace_was_given(roost: Roost) -> None:
    workspace = roost.create_workspace("debian:12", mem_mib=512, pids=100)
    try:
        limits = workspace.stats().limits
    finally:
        workspace.delete()

    assert (limits.memory_bytes, limits.pids) == (512 * MIB, 100)


def test_a_stopped_workspace_has_no_stats_and_says_how_to_start_it(roost: Roost, workspace: Workspace) -> None:
    workspace.stop()

    with pytest.raises(RoostError) as caught:
        workspace.stats()

    assert caught.value.code == "workspace_stopped"
    assert "start" in caught.value.hint
