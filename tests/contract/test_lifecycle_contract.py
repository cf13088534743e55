"""Stop and start through the SDK on every backend: /workspace survives, live state does not."""

from __future__ import annotations

import pytest

from helpers import pids_with_env
from roost import Roost, RoostError, Workspace


def test_stop_keeps_the_workspace_files_and_start_brings_the_workspace_back(roost: Roost, workspace: Workspace) -> None:
    workspace.files.write("kept.txt", "still here\n")
    shell = workspace.shells.open()
    workspace.services.start("sleeper", "sleep 1000")

    stopped = workspace.stop()

    assert stopped.state == "stopped"
    with pytest.raises(RoostError) as caught:
        workspace.exec("true")
    assert caught.value.code == "workspace_stopped"
    assert "start" in caught.value.hint
    assert workspace.stop().state == "stopped"  # stopping again changes nothing

    started = workspace.start()

    assert (started.state, started.health) == ("running", "ok")
    assert workspace.exec(["cat", "kept.txt"]).stdout == "still here\n"
    # Stopping closed the shell and stopped the service before the agent went.
    assert [(s.id, s.state) for s in workspace.shells.list()] == [(shell.id, "closed")]
    assert [(s.name, s.state) for s in workspace.services.list()] == [("sleeper", "stopped")]
    assert workspace.start().state == "running"  # starting a running workspace changes nothing


def test_a_stopped_workspace_runs_no_processes(roost: Roost, workspace: Workspace) -> None:
    workspace.services.start("sleeper", "sleep 1000")
    workspace.stop()

    assert pids_with_env("ROOST_WORKSPACE_ID", workspace.id) == set()


def test_a_deleted_stopped_workspace_is_gone(roost: Roost, workspace: Workspace) -> None:
    workspace.stop()
    workspace.delete()

    with pytest.raises(RoostError) as caught:
        roost.workspace(workspace.id)
    assert caught.value.code == "workspace_not_found"
