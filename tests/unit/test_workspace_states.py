"""A workspace's state machine: the moves lifecycle, power and health make, and the ones no record may make."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.errors import ConflictError
from roost.store.records import WorkspaceRecord, utc_now
from roost.store.states import CREATING, DELETING, FAILED, RUNNING, STATES, STOPPED, UNHEALTHY, can_move
from roost.workspace.engine import Engine

MADE = [
    (CREATING, RUNNING),  # booted, seeded, baselined
    (CREATING, FAILED),  # its creator ended first
    (CREATING, UNHEALTHY),  # something else answered in its agent's place while seeding
    (RUNNING, UNHEALTHY),
    (RUNNING, STOPPED),
    (UNHEALTHY, STOPPED),
    (STOPPED, RUNNING),
] + [(state, DELETING) for state in STATES]

NEVER = [
    (FAILED, RUNNING),  # a failed create never got its baseline: delete it
    (FAILED, STOPPED),
    (UNHEALTHY, RUNNING),  # only through stopped (restart)
    (STOPPED, UNHEALTHY),
    (RUNNING, CREATING),
    (DELETING, RUNNING),  # a delete got there first
    (DELETING, STOPPED),
]


def _record(state: str) -> WorkspaceRecord:
    now = utc_now()
    return WorkspaceRecord("ws-0123456789", "debian:12", "mock", state, now, now)


@pytest.mark.parametrize(("was", "now"), MADE)
def test_every_move_roost_makes_is_allowed(was: str, now: str) -> None:
    assert can_move(was, now)
    assert _record(was).moved_to(now).state == now


@pytest.mark.parametrize(("was", "now"), NEVER)
def test_a_move_the_machine_lacks_is_workspace_busy_and_changes_nothing(was: str, now: str) -> None:
    record = _record(was)
    assert not can_move(was, now)
    with pytest.raises(ConflictError) as caught:
        record.moved_to(now)
    assert caught.value.code == "workspace_busy"
    assert f"is {was}: it cannot become {now}" in caught.value.message
    assert record.state == was


@pytest.mark.parametrize("state", STATES)
def test_staying_in_a_state_is_always_allowed(state: str) -> None:
    assert can_move(state, state)


def test_a_state_changes_only_through_moved_to() -> None:
    with pytest.raises(TypeError):
        _record(RUNNING).replace(state=DELETING)
    assert _record(RUNNING).replace(name="kept").name == "kept"


def test_health_never_marks_a_workspace_being_deleted(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "home", "mock")
    record = _record(DELETING)
    engine.store.create_dir(record.id)
    engine.store.save(record)

    marked = engine.mark(record, UNHEALTHY, "something else answered in its agent's place")

    assert marked.state == DELETING
    assert engine.store.load(record.id).state == DELETING
