"""The service model on its own: names, probe specs, the state machine, records and backoff.

`roost.agent.services.model` is pure, so nothing here starts a process.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.agent.services.model import (
    ACTIVE,
    EXITED,
    FAILED,
    READY,
    STARTING,
    STATES,
    STOPPED,
    ProbeSpec,
    ServiceRecord,
    restart_delay,
    should_restart,
)
from roost.protocol import Code, OpError
from roost.protocol.limits import SERVICE_NAME
from roost.protocol.ops.services import ReadinessProbe, check_service_name


def _record(state: str = STARTING, **changes: Any) -> ServiceRecord:
    base = ServiceRecord(name="web", command=["sleep", "1"], cwd="/workspace", state=STARTING, restart="no", probe=None)
    return ServiceRecord.from_dict({**base.to_dict(), "state": state, **changes})


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "a", "0", "api-v2", "db_main", "x.y", "a" * 63])
def test_a_valid_name_is_returned_as_it_is(name: str) -> None:
    assert check_service_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Web", "-web", ".web", "_web", "a b", "a/b", "a" * 64, "wéb", "web\n", "web\nx", None, 7]
)
def test_an_invalid_name_is_invalid_argument_with_a_hint(name: object) -> None:
    with pytest.raises(OpError) as caught:
        check_service_name(name)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "a-z 0-9" in caught.value.hint


@given(st.from_regex(SERVICE_NAME, fullmatch=True))
def test_every_name_the_pattern_allows_is_accepted(name: str) -> None:
    assert check_service_name(name) == name


# -- readiness probes -----------------------------------------------------------------------------


def test_no_probe_is_none() -> None:
    assert ProbeSpec.from_message(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"file": ".ready"}, ProbeSpec("file", ".ready", 30.0, 0.1)),
        ({"tcp": "8000", "timeout_s": 2}, ProbeSpec("tcp", "8000", 2.0, 0.1)),
        (
            {"http": "http://127.0.0.1:8000/", "interval_s": 0.01},
            ProbeSpec("http", "http://127.0.0.1:8000/", 30.0, 0.01),
        ),
        ({"command": "true", "file": None}, ProbeSpec("command", "true", 30.0, 0.1)),
    ],
)
def test_one_probe_kind_becomes_a_spec_with_its_timing(raw: dict[str, Any], expected: ProbeSpec) -> None:
    assert ProbeSpec.from_message(ReadinessProbe.from_wire(raw)) == expected


@pytest.mark.parametrize(
    "raw", [{"file": ".ready", "tcp": "8000"}, {"http": "x", "command": "true", "file": "y"}, {"timeout_s": 1}]
)
def test_anything_but_exactly_one_probe_kind_is_refused_naming_them(raw: dict[str, Any]) -> None:
    with pytest.raises(OpError) as caught:
        ProbeSpec.from_message(ReadinessProbe.from_wire(raw))
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "exactly one readiness probe" in caught.value.message
    for kind in ("file", "tcp", "http", "command"):
        assert (kind in caught.value.message) == (raw.get(kind) is not None)


@pytest.mark.parametrize(
    "raw",
    [
        "file",
        {"file": ""},
        {"file": 3},
        {"file": ".r", "timeout_s": 0},
        {"file": ".r", "timeout_s": -1},
        {"file": ".r", "timeout_s": True},
        {"file": ".r", "interval_s": "fast"},
    ],
)
def test_a_malformed_probe_is_invalid_argument(raw: Any) -> None:
    with pytest.raises(OpError) as caught:
        ProbeSpec.from_message(ReadinessProbe.from_wire(raw))
    assert caught.value.code == Code.INVALID_ARGUMENT


# -- the state machine ----------------------------------------------------------------------------

ALLOWED = {
    (STARTING, READY),
    (STARTING, FAILED),
    (STARTING, EXITED),
    (STARTING, STOPPED),
    (READY, FAILED),
    (READY, EXITED),
    (READY, STOPPED),
    (FAILED, STARTING),
    (FAILED, STOPPED),
    (EXITED, STARTING),
    (EXITED, STOPPED),
    (STOPPED, STARTING),
}


@pytest.mark.parametrize("before", STATES)
@pytest.mark.parametrize("after", STATES)
def test_a_record_moves_only_along_the_state_machine(before: str, after: str) -> None:
    record = _record(before)
    if (before, after) in ALLOWED or before == after:
        moved = record.moved_to(after, reason="why")
        assert (moved.state, moved.reason) == (after, "why")
        assert record.state == before  # records are values
    else:
        with pytest.raises(ValueError, match=f"a {before} service cannot become {after}"):
            record.moved_to(after)


def test_only_starting_and_ready_count_as_active() -> None:
    assert set(ACTIVE) == {STARTING, READY}


def test_a_record_round_trips_through_its_dict_and_ignores_unknown_keys() -> None:
    record = _record(READY, pid=42, started_at="2026-01-01T00:00:00Z", restarts=3, probe={"kind": "file"})
    data = record.to_dict()
    assert ServiceRecord.from_dict(data) == record
    assert ServiceRecord.from_dict({**data, "added_by_a_newer_agent": 1}) == record


# -- restarts -------------------------------------------------------------------------------------


def test_restart_backoff_starts_at_a_tenth_of_a_second_doubles_and_is_capped_at_five() -> None:
    assert [restart_delay(n) for n in range(7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0])
    assert restart_delay(1000) == 5.0


@pytest.mark.parametrize(
    ("policy", "exit_code", "restarts"),
    [
        ("no", 0, False),
        ("no", 3, False),
        ("no", None, False),
        ("on-failure", 0, False),
        ("on-failure", 3, True),
        ("on-failure", None, True),  # killed by a signal
        ("always", 0, True),
        ("always", 3, True),
        ("always", None, True),
    ],
)
def test_the_restart_policy_decides_from_the_exit_code(policy: str, exit_code: int | None, restarts: bool) -> None:
    assert should_restart(policy, exit_code) is restarts
