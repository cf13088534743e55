"""`roost workspace service ...` end to end on the mock backend.

Every call is its own CLI process, so every step also shows that service
records live in the workspace's agent and outlive the CLI that made them.
The service semantics are the contract suite's; these tests check what the
CLI adds: flags, output, exit codes and error documents. CLI processes are
the cost here, so each test makes as few calls as its checks need.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from helpers import pids_with_env, wait_until
from roost.backends.processes import WORKSPACE_MARKER

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e

FAST = ("--ready-interval-ms", "10", "--ready-timeout", "10")
STOP_PROMPTLY = 3.0  # a whole CLI process, start to exit, on a loaded machine: far below the 10 s grace
CALL_TIMEOUT = 30.0  # only stops a hung CLI from eating CI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(roost: RoostCli, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    proc = roost(*args)
    return proc, time.monotonic() - began


def together(roost: RoostCli, *calls: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent CLI calls at once (each is a process start-up, mostly waiting); results in order."""
    running = [(roost.argv(*args), roost.popen(*args)) for args in calls]
    done = []
    try:
        for argv, proc in running:
            out, err = proc.communicate(timeout=CALL_TIMEOUT)
            done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    finally:
        for _, proc in running:  # a hung call fails the test and takes no process with it
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def newest_request(roost: RoostCli, ws: str) -> str:
    """The last line of the web service's stderr log once it is a request, else ''."""
    line = roost("workspace", "service", "logs", ws, "web", "--stream", "stderr", "--tail", "1", check_rc=0).stdout
    return line if "GET" in line else ""


def test_services_start_report_log_fail_and_stop_across_cli_processes(roost: RoostCli) -> None:
    ws = roost.create()
    port = str(free_port())
    web_started, worker = together(
        roost,
        ("workspace", "service", "start", ws, "web", "--json", "--ready-http", f"http://127.0.0.1:{port}/", *FAST,
         "--", "python3", "-m", "http.server", port, "--bind", "127.0.0.1"),
        ("workspace", "service", "start", ws, "worker", "--ready-file", ".ready", *FAST,
         "-c", "sleep 0.2; touch .ready; sleep 1000"),
    )  # fmt: skip
    assert web_started.returncode == 0, web_started.stderr
    web = json.loads(web_started.stdout)
    assert (web["state"], web["probe"]["kind"], web["probe"]["interval_s"]) == ("ready", "http", 0.01)
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.startswith("worker is ready (pid ")

    # Later CLI processes see what earlier ones started; the http server logs the probe's request to stderr.
    listed, described, last_line = together(
        roost,
        ("workspace", "service", "list", ws, "--json"),
        ("workspace", "service", "status", ws, "worker"),
        ("workspace", "service", "logs", ws, "web", "--stream", "stderr", "--tail", "1"),
    )
    services = json.loads(listed.stdout)["services"]
    assert [(s["name"], s["state"]) for s in services] == [("web", "ready"), ("worker", "ready")]
    assert services[0]["pid"] == web["pid"]
    assert "state    ready" in described.stdout and "probe    file .ready" in described.stdout
    assert "ready    20" in described.stdout  # the time it became ready
    newest = last_line.stdout
    if "GET" not in newest:  # the agent's log pump may be a moment behind
        newest = wait_until(lambda: newest_request(roost, ws), what="the request log")
    assert newest.count("\n") == 1 and '"GET / HTTP/1.1" 200' in newest

    # A service that exits while starting, and one whose probe never passes: exit 1 with service_failed.
    closed = str(free_port())
    failed, deaf = together(
        roost,
        ("workspace", "service", "start", ws, "bad", "--ready-file", ".never", *FAST,
         "--", "sh", "-c", "echo boom >&2; exit 3"),
        ("workspace", "service", "start", ws, "deaf", "--json", "--ready-tcp", closed, "--ready-timeout", "0.5",
         "--", "sleep", "1000"),
    )  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    assert "--- last output of bad ---\nboom\n" in failed.stderr
    assert "process exited with code 3" in failed.stderr and "[service_failed]" in failed.stderr
    error = roost.error(deaf, 1, "service_failed")
    assert f"readiness probe timed out after 0.5s: tcp 127.0.0.1:{closed}" in error["message"]

    assert roost.json("workspace", "status", ws)["services"] == {"ready": 2, "failed": 2}
    began = time.monotonic()
    stops = together(roost, *(("workspace", "service", "stop", ws, name) for name in ("web", "worker")))
    took = time.monotonic() - began
    assert [(p.returncode, p.stdout) for p in stops] == [(0, "web is stopped\n"), (0, "worker is stopped\n")]
    assert took < STOP_PROMPTLY, f"stopping both took {took:.2f}s"

    roost("workspace", "delete", ws, check_rc=0)
    assert not pids_with_env(WORKSPACE_MARKER, ws)
    assert roost.workspace_dirs() == []


def test_refusals_exit_with_their_codes_a_term_ignoring_service_is_killed_and_follow_ends(roost: RoostCli) -> None:
    ws = roost.create()
    script = "trap '' TERM; touch trapped; sleep 1000"
    roost("workspace", "service", "start", ws, "stubborn", "--ready-file", "trapped", *FAST, "-c", script, check_rc=0)
    talker = "echo one; while [ ! -e go ]; do sleep 0.01; done; echo two"
    taken, two, talking = together(
        roost,
        ("workspace", "service", "start", ws, "stubborn", "--json", "--", "sleep", "1"),
        ("workspace", "service", "start", ws, "two", "--json", "--ready-file", "x", "--ready-tcp", "1", "--", "true"),
        ("workspace", "service", "start", ws, "talker", "-c", talker),
    )
    roost.error(taken, 4, "service_exists")
    assert "file" in roost.error(two, 2, "invalid_argument")["message"]
    assert talking.returncode == 0, talking.stderr

    follower = roost.popen("workspace", "service", "logs", ws, "talker", "--follow")
    try:
        stopped, took = timed(roost, "workspace", "service", "stop", ws, "stubborn", "--timeout", "0.3", "--json")
        assert stopped.returncode == 0, stopped.stderr
        assert '"signal": "SIGKILL"' in stopped.stdout
        assert 0.3 <= took < 0.3 + STOP_PROMPTLY, f"took {took:.2f}s"

        assert follower.stdout is not None
        assert follower.stdout.readline() == "one\n"
        roost("workspace", "exec", ws, "--", "touch", "go", check_rc=0)
        out, err = follower.communicate(timeout=5.0)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(5.0)
    assert (follower.returncode, out) == (0, "two\n"), err
