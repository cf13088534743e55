"""kill -9 of a workspace's agent: one recovery hint on every command, and nothing the workspace
started outlives stop, restart or delete, services and double-forked daemons included.

Harmless when it fails: the only process killed from outside is the test's own workspace agent.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from helpers import cmdline, kill_agent, pid_alive, pids_with_env, processes_mentioning, wait_until
from roost import Roost, RoostError, Workspace
from roost.backends.processes import WORKSPACE_MARKER

AGENT_GONE_CODES = ("agent_unreachable", "agent_disconnected", "workspace_unhealthy")


def _start_leftovers(ws: Workspace) -> set[int]:
    """A service (its own session, under the agent's supervisor) and a `setsid` daemon; their pids."""
    ws.services.start("svc", "sleep 301")
    assert ws.exec("setsid sh -c 'sleep 302 &' >/dev/null 2>&1").ok
    ws.shells.open()

    def sleepers() -> set[int]:
        found = {pid for pid in pids_with_env(WORKSPACE_MARKER, ws.id) if cmdline(pid)[:1] == ["sleep"]}
        return found if len(found) == 2 else set()

    return wait_until(sleepers, what="the service and the daemon to run")


def _nothing_left(roost: Roost, ws: Workspace) -> bool:
    return not pids_with_env(WORKSPACE_MARKER, ws.id) and not processes_mentioning(
        str(roost.home / "workspaces" / ws.id)
    )


def test_a_killed_agent_gives_every_command_the_restart_hint_and_restart_kills_what_it_left(
    roost: Roost, workspace: Workspace
) -> None:
    leftovers = _start_leftovers(workspace)
    kill_agent(roost.home, workspace.id)

    calls: list[Callable[[], object]] = [
        lambda: workspace.exec("true"),
        lambda: workspace.files.list(),
        lambda: workspace.services.list(),
        lambda: workspace.shells.list(),
        lambda: workspace.diff(),
    ]
    hints = set()
    for call in calls:
        with pytest.raises(RoostError) as caught:
            call()
        assert caught.value.code in AGENT_GONE_CODES
        hints.add(caught.value.hint)
    status = workspace.info()
    assert status.state == "unhealthy"
    assert status.health
    hints.add(status.hint)
    (hint,) = hints  # one hint, whichever command noticed first
    assert f"`roost.workspace({workspace.id!r}).restart()`" in hint  # the SDK's spelling of the remedy

    restarted = workspace.restart()

    assert (restarted.state, restarted.health, restarted.hint) == ("running", "ok", None)
    assert not [pid for pid in leftovers if pid_alive(pid)], "restart left the old service or daemon running"
    assert workspace.exec("echo back").stdout == "back\n"


def test_stop_after_a_killed_agent_kills_every_process_the_workspace_left(roost: Roost, workspace: Workspace) -> None:
    leftovers = _start_leftovers(workspace)
    kill_agent(roost.home, workspace.id)

    assert workspace.stop().state == "stopped"

    assert not [pid for pid in leftovers if pid_alive(pid)]
    assert _nothing_left(roost, workspace)
    assert workspace.start().state == "running"


def test_delete_after_a_killed_agent_leaves_no_process(roost: Roost, workspace: Workspace) -> None:
    leftovers = _start_leftovers(workspace)
    kill_agent(roost.home, workspace.id)
    assert workspace.info().state == "unhealthy"

    workspace.delete()

    assert not [pid for pid in leftovers if pid_alive(pid)]
    assert _nothing_left(roost, workspace)
    assert not (roost.home / "workspaces" / workspace.id).exists()


def test_restart_works_from_running_and_from_stopped_and_keeps_the_files(workspace: Workspace) -> None:
    workspace.files.write("kept.txt", "kept\n")

    assert workspace.restart().state == "running"
    workspace.stop()
    assert workspace.restart().state == "running"

    assert workspace.files.read("kept.txt").text == "kept\n"
