"""The agent's service supervisor, its logs, and its records across agent restarts.

Most supervisor tests inject `FakeProcesses`: processes made of two pipes and
a return code, whose signals the test sees and whose exits the test decides,
so stop, restart and failure paths run without forking. `OsProcesses` itself
is checked against real children, and the restart test runs real agents on
one state directory.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from helpers import cmdline, listed, pid_alive, process_state, read_pids, start_agent_process, wait_until
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.services.logs import RotatingLog, ServiceLogs, read_from, size, tail
from roost.agent.services.model import FAILED, READY, STOPPED, ProbeSpec, ServiceRecord, ServiceSpec
from roost.agent.services.supervisor import ServiceSupervisor
from roost.agent.system.processes import OsProcesses
from roost.protocol import OpError
from roost.rpc import connect_unix

IO_TIMEOUT = 10.0
QUICK = 1.0  # "at once" for a stop with nothing to wait for: far below any grace used here


# -- fakes ----------------------------------------------------------------------------------------


class FakeProcess:
    """A stand-in for a `Popen`: real pipes for its output, a return code the test decides."""

    def __init__(self, pid: int, *, ignores_term: bool = False) -> None:
        self.pid = pid
        self.ignores_term = ignores_term
        self.returncode: int | None = None
        out_r, self._out_w = os.pipe()
        err_r, self._err_w = os.pipe()
        self.stdout = open(out_r, "rb", buffering=0)  # noqa: SIM115 - the supervisor closes them
        self.stderr = open(err_r, "rb", buffering=0)  # noqa: SIM115
        self._ended = threading.Event()
        self._lock = threading.Lock()

    def print(self, text: str, stream: str = "stdout") -> None:
        os.write(self._out_w if stream == "stdout" else self._err_w, text.encode())

    def exit(self, code: int) -> None:
        """End: the pipes close and `wait` answers `code` (negative: killed by that signal)."""
        with self._lock:
            if self.returncode is None:
                self.returncode = code
                os.close(self._out_w)
                os.close(self._err_w)
        self._ended.set()

    def become_zombie(self, code: int) -> None:
        """Exit but leave the pipes open, as when a descendant still holds them: only /proc knows."""
        with self._lock:
            self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        assert self._ended.wait(IO_TIMEOUT), "the supervisor waited for a process that never ended"
        assert self.returncode is not None
        return self.returncode

    def close_pipes(self) -> None:
        for fd in (self._out_w, self._err_w):
            try:
                os.close(fd)
            except OSError:
                pass


class FakeProcesses(OsProcesses):
    """Every process the supervisor starts, every signal it sends, and failures to inject."""

    def __init__(self, *, ignores_term: bool = False) -> None:
        self.ignores_term = ignores_term
        self.spawned: list[FakeProcess] = []
        self.signals: list[tuple[int, signal.Signals]] = []
        self.spawn_error: OSError | None = None
        self._pids = itertools.count(1_000_001)

    def spawn(
        self, argv: Sequence[str], cwd: str, env: dict[str, str], *, stdin: int, stdout: int, stderr: int
    ) -> subprocess.Popen[bytes]:
        if self.spawn_error is not None:
            raise self.spawn_error
        proc = FakeProcess(next(self._pids), ignores_term=self.ignores_term)
        self.spawned.append(proc)
        return cast("subprocess.Popen[bytes]", proc)

    def signal_group(self, pgid: int, sig: int) -> None:
        self.signals.append((pgid, signal.Signals(sig)))
        proc = next(p for p in self.spawned if p.pid == pgid)
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and not proc.ignores_term):
            if proc.returncode is None:
                proc.exit(-sig)
            else:
                proc.close_pipes()  # the group's last members go too

    def exited(self, proc: subprocess.Popen[bytes]) -> bool:
        return proc.poll() is not None

    def sent(self) -> list[signal.Signals]:
        return [sig for _, sig in self.signals]

    def latest(self) -> FakeProcess:
        return self.spawned[-1]


@pytest.fixture
def workspace_root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def fake_os() -> FakeProcesses:
    return FakeProcesses()


@pytest.fixture
def supervisor(tmp_path: Path, workspace_root: Path, fake_os: FakeProcesses) -> Iterator[ServiceSupervisor]:
    made = ServiceSupervisor(str(tmp_path / "state"), WorkspacePaths(str(workspace_root)), {}, fake_os)
    yield made
    # Whatever a test left running or waiting to restart ends now, with no grace period to wait out.
    for record in made.records():
        made.stop(record.name, grace_s=0.0)
    for proc in fake_os.spawned:
        proc.exit(-9)


def _spec(name: str = "web", *, probe: ProbeSpec | None = None, restart: str = "no") -> ServiceSpec:
    return ServiceSpec(name=name, argv=["server"], cwd="/workspace", probe=probe, restart=restart)


def _state(supervisor: ServiceSupervisor, name: str) -> ServiceRecord:
    return supervisor.get(name).record


def _wait_restarted(supervisor: ServiceSupervisor, name: str, restarts: int) -> None:
    """Until restart number `restarts` has spawned its process and is ready again."""

    def done() -> bool:
        record = _state(supervisor, name)
        return record.restarts == restarts and record.state == READY

    wait_until(done, what=f"restart {restarts} of {name}")


# -- stopping -------------------------------------------------------------------------------------


def test_stop_treats_an_already_exited_process_as_stopped_without_term_or_waiting(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    assert supervisor.start(_spec()).state == READY
    # Its main process is gone but not yet reaped, and a descendant keeps the pipes open.
    fake_os.latest().become_zombie(0)
    began = time.monotonic()
    record = supervisor.stop("web", grace_s=10.0)
    assert time.monotonic() - began < QUICK
    assert record.state == STOPPED
    assert signal.SIGTERM not in fake_os.sent()
    assert fake_os.sent() == [signal.SIGKILL]  # the group's leftovers, without a grace period


def test_stop_terms_the_process_group_and_a_service_that_obeys_needs_no_kill_wait(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    started = supervisor.start(_spec())
    began = time.monotonic()
    record = supervisor.stop("web", grace_s=10.0)
    assert time.monotonic() - began < QUICK
    assert fake_os.signals[0] == (started.pid, signal.SIGTERM)
    assert (record.state, record.signal, record.exit_code) == (STOPPED, "SIGTERM", None)


def test_stop_kills_a_service_that_ignores_term_once_the_grace_period_ends(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    fake_os.ignores_term = True
    supervisor.start(_spec())
    began = time.monotonic()
    record = supervisor.stop("web", grace_s=0.1)
    took = time.monotonic() - began
    assert 0.1 <= took < 0.1 + QUICK
    assert fake_os.sent() == [signal.SIGTERM, signal.SIGKILL]
    assert (record.state, record.signal) == (STOPPED, "SIGKILL")


def test_stop_all_stops_every_active_service_within_one_grace_period(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    fake_os.ignores_term = True
    for name in ("web", "worker", "queue"):
        supervisor.start(_spec(name))
    stopped = supervisor.stop_all(grace_s=0.5)
    assert sorted(stopped) == ["queue", "web", "worker"]
    # All three are asked at once and share the grace period; one at a time would alternate.
    assert fake_os.sent() == [signal.SIGTERM] * 3 + [signal.SIGKILL] * 3
    assert {(r.name, r.state, r.signal) for r in supervisor.records()} == {
        (name, STOPPED, "SIGKILL") for name in ("web", "worker", "queue")
    }
    assert supervisor.stop_all() == []  # nothing active is left


def test_stopping_a_stopped_service_again_signals_nothing(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    supervisor.start(_spec())
    supervisor.stop("web")
    sent = list(fake_os.signals)
    assert supervisor.stop("web").state == STOPPED
    assert fake_os.signals == sent


def test_an_unknown_service_is_service_not_found(supervisor: ServiceSupervisor) -> None:
    with pytest.raises(OpError) as caught:
        supervisor.stop("nope")
    assert caught.value.code == "service_not_found"


# -- starting and failing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (FileNotFoundError(2, "No such file or directory"), "command not found: server"),
        (PermissionError(13, "Permission denied"), "cannot start: Permission denied"),
    ],
)
def test_a_service_that_cannot_be_spawned_is_failed_with_the_reason(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses, error: OSError, reason: str
) -> None:
    fake_os.spawn_error = error
    record = supervisor.start(_spec())
    assert (record.state, record.reason, record.pid) == (FAILED, reason, None)
    assert record.stopped_at


def test_a_process_that_exits_while_starting_fails_with_its_code_and_output(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    probe = ProbeSpec("file", ".never", timeout_s=IO_TIMEOUT, interval_s=0.01)
    outcome: list[ServiceRecord] = []
    starter = threading.Thread(target=lambda: outcome.append(supervisor.start(_spec(probe=probe))))
    starter.start()
    wait_until(lambda: fake_os.spawned, what="the spawn")
    proc = fake_os.latest()
    proc.print("boom\n", "stderr")
    proc.exit(3)
    starter.join(IO_TIMEOUT)
    (record,) = outcome
    assert (record.state, record.exit_code, record.reason) == (FAILED, 3, "process exited with code 3")
    assert supervisor.failure_log(supervisor.get("web")) == "boom\n"


def test_a_probe_that_never_passes_fails_the_service_and_ends_its_process(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    probe = ProbeSpec("file", ".never", timeout_s=0.1, interval_s=0.01)
    record = supervisor.start(_spec(probe=probe))
    assert record.state == FAILED
    assert record.reason == "readiness probe timed out after 0.1s: .never does not exist yet"
    assert fake_os.sent()[0] == signal.SIGTERM
    assert fake_os.latest().returncode is not None


def test_a_file_probe_is_ready_once_the_file_appears_relative_to_the_cwd(
    supervisor: ServiceSupervisor, workspace_root: Path
) -> None:
    probe = ProbeSpec("file", ".ready", timeout_s=IO_TIMEOUT, interval_s=0.01)
    (workspace_root / ".ready").touch()
    record = supervisor.start(_spec(probe=probe))
    assert record.state == READY
    assert record.ready_at and record.started_at
    assert record.cwd == "/workspace"


def test_a_running_name_is_refused_and_a_stopped_one_starts_again(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    first = supervisor.start(_spec())
    with pytest.raises(OpError) as caught:
        supervisor.start(_spec())
    assert caught.value.code == "service_exists"
    supervisor.stop("web")
    again = supervisor.start(_spec())
    assert again.state == READY
    assert again.pid != first.pid


def test_a_service_killed_by_a_real_time_signal_fails_naming_the_signal_by_number(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    assert supervisor.start(_spec()).state == READY
    fake_os.latest().exit(-(signal.SIGRTMIN + 1))  # real-time signals have no name of their own
    wait_until(lambda: supervisor.get("web").done.is_set(), what="the watcher to record the exit")
    record = _state(supervisor, "web")
    assert (record.state, record.exit_code, record.signal) == (FAILED, None, str(signal.SIGRTMIN + 1))
    assert record.reason == f"process was killed by {signal.SIGRTMIN + 1}"


# -- restart policies -----------------------------------------------------------------------------


def test_on_failure_restarts_a_crash_with_growing_count_and_no_never_does(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    supervisor.start(_spec("keeps", restart="on-failure"))
    keeps = fake_os.latest()
    supervisor.start(_spec("once", restart="no"))
    once = fake_os.latest()
    keeps.exit(1)
    once.exit(1)
    _wait_restarted(supervisor, "keeps", 1)
    second = fake_os.latest()
    assert second is not keeps
    second.exit(1)
    _wait_restarted(supervisor, "keeps", 2)
    # `once` crashed at the same moment and has had more than its backoff to restart: it did not.
    assert _state(supervisor, "once").state == FAILED
    assert _state(supervisor, "once").restarts == 0
    assert [p.pid for p in fake_os.spawned].count(once.pid) == 1
    assert len(fake_os.spawned) == 4


def test_on_failure_leaves_a_clean_exit_alone_and_always_restarts_it(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    supervisor.start(_spec("clean", restart="on-failure"))
    clean = fake_os.latest()
    supervisor.start(_spec("always", restart="always"))
    always = fake_os.latest()
    clean.exit(0)
    always.exit(0)
    _wait_restarted(supervisor, "always", 1)
    assert (_state(supervisor, "clean").state, _state(supervisor, "clean").restarts) == ("exited", 0)
    assert _state(supervisor, "clean").exit_code == 0


def test_a_restart_whose_working_directory_became_a_link_out_fails_without_starting(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses, workspace_root: Path, tmp_path: Path
) -> None:
    (workspace_root / "app").mkdir()
    supervisor.start(ServiceSpec("web", ["server"], "/workspace/app", restart="always"))
    os.rename(workspace_root / "app", workspace_root / "app.old")
    os.symlink(tmp_path, workspace_root / "app")  # the workspace points the service's cwd out
    fake_os.latest().exit(0)
    wait_until(lambda: _state(supervisor, "web").restarts == 1, what="the restart")
    record = wait_until(lambda: (r := _state(supervisor, "web")).state == FAILED and r, what="the failed restart")
    assert record.reason == "'/workspace/app' resolves outside /workspace through a symlink"
    assert len(fake_os.spawned) == 1


def test_stopping_a_service_waiting_to_restart_cancels_the_restart(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses
) -> None:
    supervisor.start(_spec(restart="always"))
    fake_os.latest().exit(0)
    wait_until(lambda: _state(supervisor, "web").state == "exited", what="the exit")
    (restarter,) = wait_until(
        lambda: [t for t in threading.enumerate() if t.name == "svc-restart-web"], what="the pending restart"
    )
    began = time.monotonic()
    assert supervisor.stop("web").state == STOPPED
    assert time.monotonic() - began < QUICK
    # The restart wakes from its backoff, sees the stop and gives up: one process ever spawned.
    restarter.join(IO_TIMEOUT)
    assert not restarter.is_alive()
    assert _state(supervisor, "web").state == STOPPED
    assert len(fake_os.spawned) == 1


# -- records and logs on disk ---------------------------------------------------------------------


def test_records_and_logs_live_in_the_state_dir_never_in_the_workspace(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses, workspace_root: Path, tmp_path: Path
) -> None:
    supervisor.start(_spec())
    fake_os.latest().print("out\n")
    fake_os.latest().print("err\n", "stderr")
    service_dir = tmp_path / "state" / "services" / "web"
    wait_until(lambda: len(tail(str(service_dir), "both", None)) == 8, what="both lines in the combined log")
    stored = json.loads((service_dir / "record.json").read_text())
    assert (stored["name"], stored["state"]) == ("web", READY)
    assert sorted(p.name for p in service_dir.iterdir()) == ["combined.log", "record.json", "stderr.log", "stdout.log"]
    assert list(workspace_root.iterdir()) == []
    wait_until(lambda: tail(str(service_dir), "stderr", None) == b"err\n", what="stderr in its own log")
    assert tail(str(service_dir), "stdout", None) == b"out\n"


def test_a_new_supervisor_on_the_same_state_dir_reports_old_services_stopped(
    supervisor: ServiceSupervisor, fake_os: FakeProcesses, workspace_root: Path, tmp_path: Path
) -> None:
    supervisor.start(_spec("running"))
    supervisor.start(_spec("done"))
    supervisor.stop("done")
    later = ServiceSupervisor(str(tmp_path / "state"), WorkspacePaths(str(workspace_root)), {}, FakeProcesses())
    records = {r.name: r for r in later.records()}
    assert (records["running"].state, records["running"].reason) == (STOPPED, "the agent restarted")
    assert (records["done"].state, records["done"].reason) == (STOPPED, None)


def test_a_rotating_log_keeps_one_older_generation_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "stdout.log"
    log = RotatingLog(str(path), max_bytes=100)
    lines = [f"line {n:03d} ".encode() + b"x" * 20 + b"\n" for n in range(40)]  # 30 bytes each
    for line in lines:
        log.write(line)
    log.close()
    assert path.stat().st_size <= 100
    assert (tmp_path / "stdout.log.1").stat().st_size <= 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout.log", "stdout.log.1"]
    kept = tail(str(tmp_path), "stdout", None)
    assert kept.endswith(lines[-1])
    assert lines[0] not in kept
    assert b"".join(lines).endswith(kept)  # what is kept is the newest output, in order
    assert tail(str(tmp_path), "stdout", 2) == b"".join(lines[-2:])
    assert tail(str(tmp_path), "stdout", 0) == b""


def test_a_write_larger_than_the_limit_still_lands_whole(tmp_path: Path) -> None:
    log = RotatingLog(str(tmp_path / "stdout.log"), max_bytes=10)
    log.write(b"a" * 25)
    log.write(b"b" * 5)
    log.close()
    assert (tmp_path / "stdout.log.1").read_bytes() == b"a" * 25
    assert (tmp_path / "stdout.log").read_bytes() == b"b" * 5


def test_a_log_written_after_close_drops_the_output_instead_of_failing(tmp_path: Path) -> None:
    log = RotatingLog(str(tmp_path / "stdout.log"))
    log.close()
    log.write(b"late")
    assert (tmp_path / "stdout.log").read_bytes() == b""


def test_reading_from_an_offset_follows_a_log_and_restarts_after_rotation(tmp_path: Path) -> None:
    logs = ServiceLogs(str(tmp_path / "svc"), max_bytes=16)
    directory = str(tmp_path / "svc")
    assert read_from(directory, "stdout", 0) == (b"", 0)
    logs.write("stdout", b"hello\n")
    data, offset = read_from(directory, "stdout", 0)
    assert (data, offset) == (b"hello\n", 6)
    logs.write("stdout", b"world\n")
    assert read_from(directory, "stdout", offset) == (b"world\n", 12)
    logs.write("stdout", b"rotated!\n")  # past 16 bytes: a new file
    assert read_from(directory, "stdout", 12) == (b"rotated!\n", 9)
    assert size(directory, "stdout") == 9
    assert size(directory, "stderr") == 0
    logs.close()


# -- OsProcesses against real children ------------------------------------------------------------


class _Unreaped:
    """A real child's pid that nobody reaps: `poll` knows nothing, so only /proc can tell."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        return None


def test_os_processes_counts_an_unreaped_zombie_child_as_exited() -> None:
    pid = os.posix_spawnp("true", ["true"], os.environ)
    try:
        wait_until(lambda: process_state(pid) == "Z", what="the child to become a zombie")
        assert OsProcesses().exited(cast("subprocess.Popen[bytes]", _Unreaped(pid)))
    finally:
        os.waitpid(pid, 0)
    assert OsProcesses().exited(cast("subprocess.Popen[bytes]", _Unreaped(pid)))  # reaped: no /proc entry


def test_os_processes_counts_a_live_child_as_running_until_it_ends() -> None:
    proc = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    try:
        assert not OsProcesses().exited(proc)
        OsProcesses().signal_group(proc.pid, signal.SIGKILL)
        wait_until(lambda: OsProcesses().exited(proc), what="the kill")
        assert proc.returncode == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait(IO_TIMEOUT)


def test_os_processes_signal_the_group_its_gone_leader_left_then_a_gone_group_quietly(tmp_path: Path) -> None:
    member_pid = tmp_path / "member.pid"
    leader = subprocess.Popen(["sh", "-c", f"sleep 1000 & echo $! > {member_pid}"], start_new_session=True)
    leader.wait(IO_TIMEOUT)
    (member,) = wait_until(lambda: read_pids(member_pid), what="the member the leader left in its group")
    try:
        OsProcesses().signal_group(leader.pid, signal.SIGKILL)  # the group, not the (gone) leader's pid
        wait_until(lambda: not pid_alive(member), what="the kill to reach the group's member")
        OsProcesses().signal_group(leader.pid, signal.SIGTERM)  # no one is left in it: not an error
    finally:
        if pid_alive(member):
            os.kill(member, signal.SIGKILL)  # the test's own child's child


# -- across agent restarts ------------------------------------------------------------------------


class ServiceGroups:
    """Process groups of services a test started, each with the program that led it."""

    def __init__(self) -> None:
        self.leaders: dict[int, list[str]] = {}

    def add(self, pid: int | None) -> None:
        assert pid is not None and pid > 1, "never track group 0 (our own) or init"
        self.leaders[pid] = cmdline(pid)

    def kill_leftovers(self) -> None:
        for pgid, argv in self.leaders.items():
            if pid_alive(pgid) and cmdline(pgid) == argv:  # still ours, not a reused pid
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def service_groups() -> Iterator[ServiceGroups]:
    """Services a failed test leaves running are killed; a passing test leaves none."""
    groups = ServiceGroups()
    yield groups
    groups.kill_leftovers()


def test_the_real_supervisor_stops_a_service_whose_process_exited_at_once(
    tmp_path: Path, workspace_root: Path, service_groups: ServiceGroups
) -> None:
    supervisor = ServiceSupervisor(str(tmp_path / "state"), WorkspacePaths(str(workspace_root)), dict(os.environ))
    spec = ServiceSpec("brief", ["sh", "-c", "sleep 1000 & echo $! > bg.pid; exit 0"], "/workspace")
    service_groups.add(supervisor.start(spec).pid)
    child = wait_until(lambda: read_pids(workspace_root / "bg.pid"), what="the background child's pid")[0]
    began = time.monotonic()
    record = supervisor.stop("brief", grace_s=10.0)
    assert time.monotonic() - began < QUICK
    assert record.state == STOPPED
    wait_until(lambda: not pid_alive(child), timeout=5.0, what="the orphaned child to be killed with its group")


def _call(sock: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
    with connect_unix(sock, timeout=IO_TIMEOUT) as client:
        return client.call(op, args).result


def test_after_an_agent_restart_its_old_services_are_stopped_and_their_processes_gone(
    tmp_path: Path, agent_processes: list[subprocess.Popen[bytes]], service_groups: ServiceGroups
) -> None:
    first, sock = start_agent_process(tmp_path, "first")
    agent_processes.append(first)
    started = _call(sock, "service.start", {"name": "web", "argv": ["sleep", "1000"]})
    service_groups.add(started["pid"])
    assert started["state"] == READY
    first.kill()  # a crash: nobody stops the service
    first.wait(IO_TIMEOUT)
    assert pid_alive(started["pid"]), "the service outlives the agent that started it"

    second, sock = start_agent_process(tmp_path, "second")
    agent_processes.append(second)
    with connect_unix(sock, timeout=IO_TIMEOUT) as client:
        (service,) = listed(client, "service.list")[0]
    assert (service["name"], service["state"], service["reason"]) == ("web", STOPPED, "the agent restarted")
    assert service["stopped_at"]
    wait_until(lambda: not pid_alive(started["pid"]), timeout=2.0, what="the old service's process to end")
    again = _call(sock, "service.start", {"name": "web", "argv": ["sleep", "1000"]})
    service_groups.add(again["pid"])
    assert again["state"] == READY
    assert _call(sock, "service.stop", {"name": "web", "timeout": 1.0})["state"] == STOPPED
