"""What comes back with a workspace's start and restart, on every backend, through the SDK: services kept by
their restart policy (probes and all), never shells, and a report that says which did and which did not.
"""

from __future__ import annotations

from helpers import kill_agent
from roost import Readiness, Roost, Workspace
from roost.models import WorkspaceInfo


def _running_services(workspace: Workspace) -> dict[str, int | None]:
    return {s.name: s.pid for s in workspace.services.list() if s.state in ("starting", "ready")}


def test_services_kept_by_their_policy_come_back_after_start_and_shells_are_reported_closed(
    roost: Roost, workspace: Workspace
) -> None:
    always = workspace.services.start("always", "sleep 1000", restart="always")
    workspace.services.start("failing", "sleep 1000", restart="on-failure")
    workspace.services.start("plain", "sleep 1000")
    workspace.services.start("stopped", "sleep 1000", restart="always")
    workspace.services.stop("stopped")  # stopped on purpose: it stays stopped
    shell = workspace.shells.open()

    workspace.stop()
    started = workspace.start()

    assert started.last_start is not None
    assert started.last_start.services == ("always", "failing")
    assert started.last_start.services_failed == ()
    assert started.last_start.shells_closed == (shell.id,)
    running = _running_services(workspace)
    assert set(running) == {"always", "failing"}
    assert running["always"] != always.pid
    assert [(s.id, s.state) for s in workspace.shells.list()] == [(shell.id, "closed")]
    assert workspace.info().last_start == started.last_start  # status says what start said


def test_a_kept_service_whose_probe_no_longer_passes_is_reported_and_the_start_goes_on(
    roost: Roost, workspace: Workspace
) -> None:
    workspace.files.write("go", "")
    ready = Readiness(command="test -e go", timeout_s=1)
    workspace.services.start("gated", "sleep 1000", ready=ready, restart="always")
    workspace.services.start("free", "sleep 1000", restart="always")
    workspace.files.delete("go")  # its probe passed once; it cannot pass at the next start

    workspace.stop()
    started = workspace.start()

    assert started.state == "running"
    assert started.last_start is not None
    assert started.last_start.services == ("free",)
    [failed] = started.last_start.services_failed
    assert failed.name == "gated" and "readiness probe timed out" in failed.reason
    assert set(_running_services(workspace)) == {"free"}


def test_restart_after_the_agent_died_brings_kept_services_back(roost: Roost, workspace: Workspace) -> None:
    workspace.services.start("web", "sleep 1000", restart="on-failure")
    workspace.shells.open()
    kill_agent(roost.home, workspace.id)

    restarted: WorkspaceInfo = workspace.restart()

    assert (restarted.state, restarted.health) == ("running", "ok")
    assert restarted.last_start is not None
    assert restarted.last_start.services == ("web",)
    assert restarted.last_start.shells_closed is None  # its agent was gone: nobody could say
    assert set(_running_services(workspace)) == {"web"}


def test_a_reset_stops_kept_services_for_good(roost: Roost, workspace: Workspace) -> None:
    workspace.services.start("web", "sleep 1000", restart="always")
    workspace.reset()

    started = workspace.restart()

    assert started.last_start is not None and started.last_start.services == ()
    assert _running_services(workspace) == {}
