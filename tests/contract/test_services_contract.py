"""Services, as every backend must run them, through the SDK only (`ws.services`).

Each test gets its own workspace on each backend. Waits poll with deadlines;
what a service is asked to do takes tenths of a second, so no test here waits
for a default timeout, and every stop is timed.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import pids_with_env, wait_until
from roost import RoostError, Workspace
from roost.backends.processes import WORKSPACE_MARKER
from roost.client import Readiness
from roost.models import ServiceInfo

pytestmark = pytest.mark.contract

FAST = Readiness(interval_ms=10, timeout_s=10.0)  # probes every 10 ms; the timeout only bounds a broken run
STOP_PROMPTLY = 3.0  # a stop with nothing to wait for, with slack for a loaded machine: far below the 10 s grace
# For a service whose process is already gone (or a zombie): far below the 10 s grace
# it is stopped with, so it proves the grace was not waited out, yet loose enough
# for a loaded 2-core machine. The speed itself is measured in benchmarks/services.py.
ZOMBIE_STOP = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(*, file: str | None = None, http: str | None = None) -> Readiness:
    """A fast-polling probe of one kind, e.g. `ready(file=".ready")`."""
    return dataclasses.replace(FAST, file=file, http=http)


def timed_stop(ws: Workspace, name: str, **kwargs: float) -> tuple[ServiceInfo, float]:
    began = time.monotonic()
    stopped = ws.services.stop(name, **kwargs)
    return stopped, time.monotonic() - began


def running_in(ws: Workspace, pid: int) -> bool:
    """Whether `pid` runs as the workspace itself sees it (the sandbox has its own pid space).

    A zombie is not running: an orphan waits as one for whatever reaps it, which need not be quick.
    """
    state = ws.exec(["sh", "-c", f"sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1"]).stdout.strip()
    return state not in ("", "Z", "X")


# -- the walk-through ---------------------------------------------------------------------


def test_two_services_start_ready_report_list_log_and_stop_promptly(workspace: Workspace) -> None:
    port = free_port()
    with ThreadPoolExecutor() as pool:  # two clients' starts at once, as two agents' tools would
        starting_web = pool.submit(
            workspace.services.start,
            "web",
            ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            ready=ready(http=f"http://127.0.0.1:{port}/"),
        )
        starting_worker = pool.submit(
            workspace.services.start, "worker", "sleep 0.2; touch .ready; sleep 1000", ready=ready(file=".ready")
        )
        web, worker = starting_web.result(), starting_worker.result()

    for service in (web, worker):
        assert service.state == "ready", service
        assert service.pid and service.started_at and service.ready_at
        assert service.stopped_at is None and service.exit_code is None and service.restarts == 0
    assert web.probe == {"kind": "http", "target": f"http://127.0.0.1:{port}/", "timeout_s": 10.0, "interval_s": 0.01}
    assert worker.probe is not None and worker.probe["kind"] == "file"
    assert web.command == ("python3", "-m", "http.server", str(port), "--bind", "127.0.0.1")
    assert web.cwd == "/workspace"

    assert [(s.name, s.state, s.pid) for s in workspace.services.list()] == [
        ("web", "ready", web.pid),
        ("worker", "ready", worker.pid),
    ]
    assert workspace.services.status("worker") == worker
    assert workspace.info().services == {"ready": 2}

    # The probe's own GET is the first line of the server's request log, which goes to stderr.
    first_request = wait_until(lambda: workspace.services.logs("web", stream="stderr"), what="the request log")
    assert '"GET / HTTP/1.1" 200' in first_request
    assert '"GET / HTTP/1.1" 200' in workspace.services.logs("web")
    assert "GET" not in workspace.services.logs("web", stream="stdout")
    fetch = "import sys, urllib.request as u; [u.urlopen(f'http://127.0.0.1:{sys.argv[1]}/?n={n}').read() for n in range(3)]"
    assert workspace.exec(["python3", "-c", fetch, str(port)]).exit_code == 0
    wait_until(lambda: "/?n=2" in workspace.services.logs("web", stream="stderr"), what="three more requests")
    last_two = workspace.services.logs("web", stream="stderr", tail=2).splitlines()
    assert len(last_two) == 2
    assert "/?n=1 " in last_two[0] and "/?n=2 " in last_two[1]

    for name in ("web", "worker"):
        stopped, took = timed_stop(workspace, name)
        assert stopped.state == "stopped" and stopped.stopped_at
        assert took < STOP_PROMPTLY, f"stopping {name} took {took:.2f}s"
    assert workspace.info().services == {"stopped": 2}
    # Logs are kept by the agent, outside /workspace: its file list shows only what the services made.
    assert [entry.name for entry in workspace.files.list("/workspace", recursive=True).entries] == [".ready"]
    assert workspace.exec("grep -rl 'GET /' /workspace || true").stdout == ""
    assert web.pid is not None and worker.pid is not None
    assert not running_in(workspace, web.pid) and not running_in(workspace, worker.pid)

    workspace.delete()
    assert not pids_with_env(WORKSPACE_MARKER, workspace.id)
    with pytest.raises(RoostError) as gone:
        workspace.services.list()
    assert gone.value.code == "workspace_not_found"


def test_a_service_that_exits_or_never_gets_ready_is_failed_with_the_reason(workspace: Workspace) -> None:
    failed = workspace.services.start("bad", ["sh", "-c", "echo boom >&2; exit 3"], ready=ready(file=".never"))
    assert (failed.state, failed.exit_code, failed.reason) == ("failed", 3, "process exited with code 3")
    assert failed.log_tail is not None and "boom" in failed.log_tail
    assert failed.stopped_at
    status = workspace.services.status("bad")
    assert (status.state, status.reason) == ("failed", "process exited with code 3")
    assert status.log_tail is not None and "boom" in status.log_tail
    assert workspace.services.logs("bad", stream="stderr") == "boom\n"

    port = free_port()  # nothing listens on it
    began = time.monotonic()
    deaf = workspace.services.start(
        "deaf", ["sleep", "1000"], ready=Readiness(tcp=str(port), timeout_s=0.5, interval_ms=20)
    )
    assert time.monotonic() - began < 0.5 + STOP_PROMPTLY
    assert deaf.state == "failed"
    assert deaf.reason is not None
    assert deaf.reason.startswith(f"readiness probe timed out after 0.5s: tcp 127.0.0.1:{port}")
    assert deaf.pid is not None
    assert not running_in(workspace, deaf.pid)

    workspace.services.start("fine", ["sleep", "1000"])
    assert workspace.info().services == {"failed": 2, "ready": 1}
    workspace.services.stop("fine")
    assert workspace.info().services == {"failed": 2, "stopped": 1}


def test_logs_follow_streams_new_output_and_ends_with_the_service(workspace: Workspace) -> None:
    script = "echo one; while [ ! -e go ]; do sleep 0.01; done; echo two"
    workspace.services.start("talker", script)
    seen: list[bytes] = []
    give_up = threading.Event()
    follower = threading.Thread(target=workspace.services.follow, args=("talker", seen.append, give_up), daemon=True)
    follower.start()
    try:
        wait_until(lambda: b"one\n" in b"".join(seen), what="the output so far")
        workspace.files.write("go", "")
        follower.join(5.0)
        assert not follower.is_alive(), "follow did not end when the service did"
    finally:
        give_up.set()
    assert b"".join(seen) == b"one\ntwo\n"
    assert workspace.services.status("talker").state == "exited"


# -- refusals -------------------------------------------------------------------------------------


def test_a_running_name_is_refused_a_stopped_one_starts_again_and_bad_requests_carry_codes(
    workspace: Workspace,
) -> None:
    first = workspace.services.start("web", ["sleep", "1000"])
    with pytest.raises(RoostError) as taken:
        workspace.services.start("web", ["sleep", "1000"])
    assert taken.value.code == "service_exists"
    assert taken.value.hint
    workspace.services.stop("web")
    again = workspace.services.start("web", ["sleep", "1000"])
    assert again.state == "ready"
    assert again.pid != first.pid
    assert [s.name for s in workspace.services.list()] == ["web"]
    workspace.services.stop("web")

    # Invalid names, two probes at once (not a silent pick) and unknown services change nothing.
    for name in ("", "Web", "-web", "a b", "../up", "a" * 64, "web\n"):
        with pytest.raises(RoostError) as refused:
            workspace.services.start(name, ["sleep", "1000"])
        assert refused.value.code == "invalid_argument", name
    with pytest.raises(RoostError) as two:
        workspace.services.start("both", ["sleep", "1000"], ready=Readiness(file=".r", tcp="8000"))
    assert two.value.code == "invalid_argument"
    assert "file" in two.value.message and "tcp" in two.value.message
    for call in (workspace.services.status, workspace.services.logs, workspace.services.stop):
        with pytest.raises(RoostError) as missing:
            call("nope")
        assert missing.value.code == "service_not_found"
    assert [s.name for s in workspace.services.list()] == ["web"]


# -- restart policies -----------------------------------------------------------------------------


def test_restart_policies_on_failure_and_always_restart_and_no_does_not(workspace: Workspace) -> None:
    # Each runs until the test creates `crash`, then lingers a moment (so a restart is ready first) and exits.
    crash_with = "while [ ! -e crash ]; do sleep 0.01; done; sleep 0.05; exit {code}"
    workspace.services.start("flaky", crash_with.format(code=1), restart="on-failure")
    workspace.services.start("once", crash_with.format(code=1), restart="no")
    workspace.services.start("batch", crash_with.format(code=0), restart="always")
    first_pid = workspace.services.status("flaky").pid
    workspace.files.write("crash", "")

    wait_until(lambda: workspace.services.status("flaky").restarts >= 2, what="flaky to be restarted twice")
    wait_until(lambda: workspace.services.status("batch").restarts >= 1, what="batch to be restarted after exit 0")
    flaky = workspace.services.status("flaky")
    assert flaky.pid != first_pid
    # `once` crashed with the others and had longer than their backoff to restart: it did not.
    once = workspace.services.status("once")
    assert (once.state, once.restarts, once.exit_code) == ("failed", 0, 1)

    for name in ("flaky", "once", "batch"):
        stopped, took = timed_stop(workspace, name)
        assert stopped.state == "stopped"
        assert took < STOP_PROMPTLY


def test_a_restarted_service_that_is_ready_again_shows_no_stop_or_exit_of_its_last_run(workspace: Workspace) -> None:
    # Gets ready, fails once, then runs: its restart is ready at once.
    workspace.services.start(
        "phoenix",
        "[ -e again ] && exec sleep 60; touch again; sleep 0.2; exit 3",
        restart="on-failure",
        ready=ready(file="again"),
    )
    wait_until(
        lambda: (s := workspace.services.status("phoenix")).restarts == 1 and s.state == "ready",
        what="phoenix to be ready after its restart",
    )
    phoenix = workspace.services.status("phoenix")
    assert (phoenix.stopped_at, phoenix.exit_code, phoenix.reason) == (None, None, None)
    assert phoenix.started_at is not None and phoenix.ready_at is not None and phoenix.ready_at >= phoenix.started_at
    assert workspace.services.stop("phoenix").stopped_at is not None


# -- stopping -------------------------------------------------------------------------------------


def test_stop_ends_a_dead_service_at_once_and_kills_a_term_ignoring_one_when_the_timeout_ends(
    workspace: Workspace,
) -> None:
    # Each is stopped straight away: its main process is a zombie, or just reaped, maybe not yet recorded.
    workspace.services.start("brief", "exit 0")
    stopped, took = timed_stop(workspace, "brief", timeout=10.0)
    assert stopped.state == "stopped"
    assert took < ZOMBIE_STOP, f"stopping a service that exited at once took {took:.2f}s"

    workspace.services.start("parent", "sleep 1000 & echo $! > orphan.pid; exit 0")
    orphan = int(wait_until(lambda: workspace.exec("cat orphan.pid").stdout.strip(), what="the child's pid"))
    stopped, took = timed_stop(workspace, "parent", timeout=10.0)
    assert stopped.state == "stopped"
    assert took < ZOMBIE_STOP, f"stopping a service whose child outlived it took {took:.2f}s"
    assert not running_in(workspace, orphan), "the child left in the service's group goes with it"

    # Ready only once the trap is set, so the TERM surely finds it ignored.
    workspace.services.start("stubborn", "trap '' TERM; touch trapped; sleep 1000", ready=ready(file="trapped"))
    stopped, took = timed_stop(workspace, "stubborn", timeout=0.3)
    assert (stopped.state, stopped.signal) == ("stopped", "SIGKILL")
    assert 0.3 <= took < 0.3 + STOP_PROMPTLY, f"took {took:.2f}s"
