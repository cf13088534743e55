"""Every command that meets an unhealthy workspace (its agent killed from inside) names the same way out,
`restart`, whatever it is (exec, files, shells, services, snapshots, diff, export, stats, start); stop and
delete need no way out: they work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import kill_agent
from roost import Roost, RoostError, Workspace
from roost.workspace import recovery

AGENT_GONE_CODES = ("agent_unreachable", "agent_disconnected", "workspace_unhealthy")


def _commands(workspace: Workspace, out: Path) -> dict[str, Callable[[], Any]]:
    return {
        "exec": lambda: workspace.exec("true"),
        "file list": lambda: workspace.files.list("/workspace"),
        "file read": lambda: workspace.files.read("kept.txt"),
        "file write": lambda: workspace.files.write("new.txt", "x"),
        "file delete": lambda: workspace.files.delete("kept.txt"),
        "shell open": lambda: workspace.shells.open(),
        "shell list": lambda: workspace.shells.list(),
        "service start": lambda: workspace.services.start("web", "sleep 100"),
        "service list": lambda: workspace.services.list(),
        "snapshot create": lambda: workspace.snapshots.create("one"),
        "snapshot list": lambda: workspace.snapshots.list(),
        "diff": lambda: workspace.diff(),
        "export": lambda: workspace.export("/workspace", out / "export.tar", format="tar"),
        "reset": lambda: workspace.reset(),
        "stats": lambda: workspace.stats(),
        "start": lambda: workspace.start(),
    }


def test_every_command_on_an_unhealthy_workspace_names_restart(
    roost: Roost, workspace: Workspace, tmp_path: Path
) -> None:
    workspace.files.write("kept.txt", "kept")
    kill_agent(roost.home, workspace.id)
    way_out = recovery.restart(workspace.id).as_method_call()

    for what, command in _commands(workspace, tmp_path).items():
        with pytest.raises(RoostError) as caught:
            command()
        assert caught.value.code in (*AGENT_GONE_CODES, "workspace_not_stopped"), what
        assert caught.value.hint == way_out, what

    assert workspace.info().hint == way_out
    assert workspace.stop().state == "stopped"
    assert workspace.start().state == "running"
    assert workspace.files.read("kept.txt").data == b"kept"


def test_delete_removes_an_unhealthy_workspace(roost: Roost, workspace: Workspace) -> None:
    kill_agent(roost.home, workspace.id)
    workspace.delete()
    with pytest.raises(RoostError) as caught:
        roost.workspace(workspace.id)
    assert caught.value.code == "workspace_not_found"
