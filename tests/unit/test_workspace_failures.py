"""The orchestration layer's failure paths, on the in-memory backend (tests/memory_backend.py):
an agent that dies between calls or mid-call, an impostor, a create that fails half-way, a stopped
workspace, and agent errors that point at their way out. The real agent answers, in this process:
no agent process is started, and no test waits on a clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import wait_until
from memory_backend import CRASHED, NAME, MemoryBackend
from roost.errors import BackendError, RoostError
from roost.protocol import Code, Op
from roost.store.records import WorkspaceRecord
from roost.workspace import lifecycle, operations, power, recovery, shells, snapshots
from roost.workspace.engine import Engine


@pytest.fixture
def backend() -> Iterator[MemoryBackend]:
    memory = MemoryBackend()
    yield memory
    memory.close()


@pytest.fixture
def engine(tmp_path: Path, backend: MemoryBackend) -> Iterator[Engine]:
    engine = Engine(tmp_path / "home", NAME, backends={NAME: backend})
    yield engine
    engine.close()


def _create(engine: Engine) -> WorkspaceRecord:
    return lifecycle.create(engine, lifecycle.CreateOptions(env="debian:12")).record


def _failure(call: object, *args: object, **kwargs: object) -> RoostError:
    assert callable(call)
    with pytest.raises(RoostError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_workspace_made_on_the_memory_backend_keeps_its_files_between_calls(engine: Engine) -> None:
    record = _create(engine)
    operations.write_file(engine, record, "notes.txt", b"kept\n")
    assert operations.read_file(engine, record, "notes.txt").data == b"kept\n"
    assert (record.state, record.backend) == ("running", NAME)


def test_an_agent_gone_between_calls_leaves_the_workspace_unhealthy_pointing_at_restart(
    engine: Engine, backend: MemoryBackend
) -> None:
    record = _create(engine)
    operations.write_file(engine, record, "notes.txt", b"kept\n")  # a connection is open and shared
    backend.crash(record.id)

    error = _failure(operations.read_file, engine, record, "notes.txt")

    assert error.code in ("agent_disconnected", "agent_unreachable")
    assert error.remedy == recovery.restart(record.id)
    after = engine.record(record.id)
    assert (after.state, after.reason) == ("unhealthy", CRASHED)
    unhealthy = _failure(operations.read_file, engine, after, "notes.txt")
    assert (unhealthy.code, unhealthy.remedy) == ("workspace_unhealthy", recovery.restart(record.id))


def test_an_agent_gone_mid_call_fails_that_call_with_the_restart_remedy(engine: Engine, backend: MemoryBackend) -> None:
    record = _create(engine)
    shell = shells.open_shell(engine, record)
    outcome: list[RoostError] = []

    def read_until_quiet() -> None:
        try:  # a minute of quiet is asked for: the read is under way until the agent goes
            shells.read_shell(engine, record, shell.id, wait_for_idle_ms=60_000, timeout_ms=60_000)
        except RoostError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read_until_quiet)
    reader.start()
    wait_until(lambda: backend.agents[record.id].ops.running(Op.SHELL_READ), what="the read to reach the agent")
    backend.crash(record.id)
    reader.join(10)

    assert not reader.is_alive()
    (error,) = outcome
    assert error.code == "agent_disconnected"
    assert error.remedy == recovery.restart(record.id)
    assert engine.record(record.id).state == "unhealthy"


def test_a_restart_after_a_crash_brings_the_workspace_back_with_its_files(
    engine: Engine, backend: MemoryBackend
) -> None:
    record = _create(engine)
    operations.write_file(engine, record, "notes.txt", b"kept\n")
    backend.crash(record.id)
    assert engine.check_health(record).state == "unhealthy"

    restarted = power.restart(engine, record.id)

    assert (restarted.state, restarted.reason) == ("running", None)
    assert operations.read_file(engine, restarted, "notes.txt").data == b"kept\n"


def test_an_agent_answering_for_another_workspace_is_never_talked_to_again(
    engine: Engine, backend: MemoryBackend
) -> None:
    record = _create(engine)
    engine.forget(record.id)  # the next call connects afresh, to whatever answers now
    backend.impersonate(record.id, engine.store.dir(record.id))

    error = _failure(operations.stat_file, engine, record, "/workspace")

    assert error.code == "agent_identity_mismatch"
    assert error.remedy == recovery.restart(record.id)
    assert engine.record(record.id).state == "unhealthy"


def test_a_create_whose_baseline_fails_leaves_no_workspace_and_no_agent(engine: Engine, backend: MemoryBackend) -> None:
    backend.fail(Op.SNAPSHOT_CREATE, Code.DISK_FULL)

    error = _failure(_create, engine)

    assert error.code == "disk_full"
    assert backend.agents == {}
    assert engine.store.ids() == []


def test_a_create_whose_backend_fails_leaves_no_workspace(engine: Engine, backend: MemoryBackend) -> None:
    backend.create_error = BackendError("no room for another agent", code="agent_start_failed")

    assert _failure(_create, engine).code == "agent_start_failed"
    assert engine.store.ids() == []


def test_a_stopped_workspace_refuses_calls_pointing_at_start_and_starts_again(engine: Engine) -> None:
    record = _create(engine)
    operations.write_file(engine, record, "notes.txt", b"kept\n")
    stopped = power.stop(engine, record.id)

    error = _failure(operations.read_file, engine, stopped, "notes.txt")

    assert (error.code, error.remedy) == ("workspace_stopped", recovery.start(record.id))
    started = power.start(engine, record.id)
    assert operations.read_file(engine, started, "notes.txt").data == b"kept\n"


@pytest.mark.parametrize(
    ("call", "code", "operation"),
    [
        (lambda engine, record: shells.read_shell(engine, record, "sh-00000000"), "shell_not_found", "shell_list"),
        (lambda engine, record: operations.read_file(engine, record, "missing.txt"), "path_not_found", "file_list"),
        (lambda engine, record: snapshots.reset(engine, record, "never-made"), "snapshot_not_found", "snapshot_list"),
    ],
    ids=["shell", "path", "snapshot"],
)
def test_an_agent_error_with_a_way_out_points_at_that_operation_on_its_workspace(
    engine: Engine, call: object, code: str, operation: str
) -> None:
    record = _create(engine)

    error = _failure(call, engine, record)

    assert error.code == code
    assert error.remedy is not None
    assert (error.remedy.operation, error.remedy.workspace) == (operation, record.id)
    assert engine.record(record.id).state == "running"  # the workspace itself is fine
