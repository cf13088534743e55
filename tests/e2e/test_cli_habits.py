"""CLI habits users bring from Docker and friends: `--json` anywhere, `exec WS CMD` without `--`,
`workspace list` filters and `workspace logs --follow`, each call a separate process."""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING

import pytest
from cli_helpers import parse_json

from helpers import wait_until

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "words",
    [
        ("--json", "doctor"),
        ("doctor", "--json"),
        ("--json", "workspace", "list"),
        ("workspace", "--json", "list"),
        ("ws", "list", "--json"),
    ],
)
def test_json_is_accepted_before_or_after_the_subcommand(roost: RoostCli, words: tuple[str, ...]) -> None:
    proc = roost(*words, check_rc=0)
    document = parse_json(proc.stdout)
    assert isinstance(document, dict)


def test_a_refused_command_line_with_json_first_reports_json(roost: RoostCli) -> None:
    proc = roost("--json", "workspace", "list", "--no-such-flag")
    roost.error(proc, 2, "invalid_argument")


def test_exec_without_separator_runs_the_command_with_its_options(roost: RoostCli) -> None:
    ws = roost.create()
    roost("workspace", "exec", ws, "mkdir", "-p", "sub/.hidden", check_rc=0)
    proc = roost("workspace", "exec", ws, "--cwd", "sub", "ls", "-la", check_rc=0)
    assert ".hidden" in proc.stdout  # -a reached ls, not roost
    assert proc.stdout.startswith("total ")  # -l too


def test_options_after_the_command_belong_to_it(roost: RoostCli) -> None:
    ws = roost.create()
    proc = roost("workspace", "exec", ws, "echo", "--json", "--cwd", check_rc=0)
    assert proc.stdout == "--json --cwd\n"


def test_exec_without_separator_returns_the_exit_code(roost: RoostCli) -> None:
    ws = roost.create()
    proc = roost("workspace", "exec", ws, "--json", "sh", "-c", "exit 7")
    assert proc.returncode == 7
    assert parse_json(proc.stdout)["exit_code"] == 7


def test_run_and_service_start_take_the_command_without_separator(roost: RoostCli) -> None:
    proc = roost("run", "debian:12", "echo", "-n", "hi", check_rc=0)
    assert proc.stdout == "hi"
    ws = roost.create()
    roost(
        "workspace", "service", "start", ws, "web", "--ready-file", "up", "sh", "-c", "touch up; sleep 60", check_rc=0
    )
    assert roost.json("workspace", "service", "status", ws, "web")["state"] == "ready"


def test_list_filters_by_label_state_and_backend(roost: RoostCli) -> None:
    a = roost.create("--label", "team=a", "--label", "tier=web")
    b = roost.create("--label", "team=b")
    roost("workspace", "stop", b, check_rc=0)

    def ids(*filters: str) -> set[str]:
        return {w["id"] for w in roost.json("workspace", "list", *filters)["workspaces"]}

    assert ids() == {a, b}
    assert ids("--label", "team=a") == {a}
    assert ids("--label", "team=a", "--label", "tier=db") == set()
    assert ids("--state", "stopped") == {b}
    assert ids("--state", "running", "--backend", "mock") == {a}
    assert ids("--backend", "sandbox") == set()
    assert "no workspace matches" in roost("workspace", "list", "--label", "team=z", check_rc=0).stdout


@pytest.mark.parametrize(("flag", "value"), [("--state", "sleeping"), ("--backend", "qemu"), ("--label", "team")])
def test_list_refuses_an_unknown_filter_value(roost: RoostCli, flag: str, value: str) -> None:
    roost.error(roost("workspace", "list", flag, value, "--json"), 2, "invalid_argument")


def test_logs_follow_prints_history_then_each_new_exec(roost: RoostCli) -> None:
    ws = roost.create()
    roost("workspace", "exec", ws, "echo", "first", check_rc=0)
    follower = roost.popen("workspace", "logs", ws, "--follow", "--json")
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["command"].endswith("first") and first["exec_id"] == 1
        roost("workspace", "exec", ws, "sh", "-c", "exit 4")
        second = json.loads(follower.stdout.readline())
        assert second["exec_id"] == 2 and second["exit_code"] == 4
        follower.send_signal(signal.SIGINT)
        wait_until(lambda: follower.poll() is not None, timeout=10, what="logs --follow to stop on Ctrl-C")
        assert follower.returncode == 0
    finally:
        roost.finish(follower)
