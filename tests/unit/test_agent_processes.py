"""Execs, shells and services start and signal their processes through the agent's one `OsProcesses`."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from roost.agent.context import RequestContext
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.state import AgentState
from roost.agent.system.processes import OsProcesses


class RecordingProcesses(OsProcesses):
    """The real thing, noting every process it starts and every signal it sends."""

    def __init__(self) -> None:
        self.spawned: list[list[str]] = []
        self.signals: list[tuple[str, int, signal.Signals]] = []

    def spawn(
        self, argv: Sequence[str], cwd: str, env: dict[str, str], *, stdin: int, stdout: int, stderr: int
    ) -> subprocess.Popen[bytes]:
        self.spawned.append(list(argv))
        return super().spawn(argv, cwd, env, stdin=stdin, stdout=stdout, stderr=stderr)

    def signal(self, pid: int, sig: int) -> None:
        self.signals.append(("process", pid, signal.Signals(sig)))
        super().signal(pid, sig)

    def signal_group(self, pgid: int, sig: int) -> None:
        self.signals.append(("group", pgid, signal.Signals(sig)))
        super().signal_group(pgid, sig)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentState]:
    root = tmp_path / "ws"
    root.mkdir()
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root)}
    made = AgentState(
        WorkspacePaths(str(root)),
        str(tmp_path / "state"),
        str(tmp_path / "scratch"),
        base_env,
        processes=RecordingProcesses(),
    )
    yield made
    made.stop_children()


def _call(agent: AgentState, op: str, **args: Any) -> dict[str, Any]:
    """The op's result as the RESPONSE carries it."""
    ctx = RequestContext(1, op, args, b"", lambda channel, data: None, None, threading.Event())
    return OpTable(agent).call(ctx).wire_result()


def test_an_exec_timing_out_is_started_and_killed_through_the_runtimes_processes(agent: AgentState) -> None:
    processes = agent.processes
    assert isinstance(processes, RecordingProcesses)
    result = _call(agent, "exec", argv=["sleep", "30"], timeout=0.2)
    assert result["timed_out"] is True
    assert processes.spawned == [["sleep", "30"]]
    assert ("group", processes.signals[0][1], signal.SIGKILL) in processes.signals


def test_a_shell_is_started_and_signalled_through_the_runtimes_processes(agent: AgentState) -> None:
    processes = agent.processes
    assert isinstance(processes, RecordingProcesses)
    shell = _call(agent, "shell.open", command=["sleep", "30"])
    _call(agent, "shell.signal", id=shell["id"], signal="TERM")
    assert processes.spawned[0][-2:] == ["sleep", "30"]
    assert processes.signals[0] == ("group", shell["pid"], signal.SIGTERM)  # its own group: no job of its own


def test_a_service_is_started_and_stopped_through_the_runtimes_processes(agent: AgentState) -> None:
    processes = agent.processes
    assert isinstance(processes, RecordingProcesses)
    started = _call(agent, "service.start", name="idle", argv=["sleep", "30"])
    _call(agent, "service.stop", name="idle", timeout=5)
    assert processes.spawned == [["sleep", "30"]]
    assert ("group", started["pid"], signal.SIGTERM) in processes.signals


@pytest.mark.parametrize("target", [0, -1])
def test_signalling_no_process_in_particular_is_refused(target: int) -> None:
    # Signal 0 only asks whether a target exists: harmless were the refusal missing.
    with pytest.raises(ValueError):
        OsProcesses().signal(target, 0)
    with pytest.raises(ValueError):
        OsProcesses().signal_group(target, 0)
