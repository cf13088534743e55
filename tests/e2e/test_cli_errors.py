"""How the `roost` CLI fails: the exit code, a stable `--json` error code with a hint
on stderr, and nothing half-written behind it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import cmdline, pid_alive, pids_with_env, wait_until

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e


# -- nothing to find ------------------------------------------------------------


def test_an_unknown_workspace_is_not_found(roost: RoostCli) -> None:
    for ref in ("ws-00000000", "nosuch"):
        error = roost.error(roost("workspace", "status", ref, "--json"), 3, "workspace_not_found")
        assert ref in error["message"]
        assert "roost workspace list" in error["hint"]
    roost.error(roost("workspace", "exec", "nosuch", "--json", "--", "true"), 3, "workspace_not_found")


def test_an_unknown_env_is_not_found_and_leaves_no_workspace_dir(roost: RoostCli) -> None:
    error = roost.error(roost("workspace", "create", "NoSuch:1", "--json"), 3, "env_not_found")
    assert "debian:12" in error["hint"]
    assert roost.workspace_dirs() == []
    roost.error(roost("run", "--json", "NoSuch:1", "--", "true"), 3, "env_not_found")
    assert roost.workspace_dirs() == []


def test_a_missing_seed_path_is_not_found_and_leaves_nothing_behind(roost: RoostCli, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-dir")
    proc = roost("workspace", "create", "debian:12", "--name", "seedless", "--seed-path", missing, "--json")
    error = roost.error(proc, 3, "seed_not_found")
    assert missing in error["message"]
    assert roost.workspace_dirs() == []
    # The name was not taken by the failed attempt.
    roost("workspace", "create", "debian:12", "--name", "seedless", "--id-only", check_rc=0)
    roost("workspace", "delete", "seedless", check_rc=0)


# -- bad arguments: refused before anything changes ------------------------------


@pytest.mark.parametrize("option", [["--label", "nokey"], ["--label", "=v"], ["--ttl", "0"]])
def test_create_refuses_a_bad_option_and_creates_nothing(roost: RoostCli, option: list[str]) -> None:
    roost.error(roost("workspace", "create", "debian:12", *option, "--json"), 2, "invalid_argument")
    assert roost.workspace_dirs() == []


@pytest.mark.parametrize(
    "command",
    [
        ["workspace", "create", "debian:12", "--network-policy", "egress", "--json"],
        ["run", "debian:12", "--network", "egress", "--json", "--", "true"],
    ],
)
def test_a_network_policy_the_backend_cannot_enforce_is_refused_not_ignored(
    roost: RoostCli, command: list[str]
) -> None:
    error = roost.error(roost(*command), 2, "network_unsupported")  # the mock backend isolates nothing
    assert "unisolated" in error["message"]
    assert roost.workspace_dirs() == []


@pytest.mark.parametrize("option", [["--label", "nokey"], ["--ttl", "0"], ["--ttl", "-5"]])
def test_update_refuses_a_bad_option_and_changes_nothing(
    module_roost: RoostCli, shared_workspace: str, option: list[str]
) -> None:
    before = module_roost.record(shared_workspace)
    module_roost.error(module_roost("workspace", "update", shared_workspace, *option, "--json"), 2, "invalid_argument")
    after = module_roost.record(shared_workspace)
    assert (after["labels"], after["ttl_seconds"]) == (before["labels"], before["ttl_seconds"])


def test_exec_without_a_command_is_refused_and_runs_nothing(module_roost: RoostCli, shared_workspace: str) -> None:
    before = module_roost.json("workspace", "status", shared_workspace)["exec_count"]
    module_roost.error(module_roost("workspace", "exec", shared_workspace, "--json"), 2, "invalid_argument")
    module_roost.error(module_roost("workspace", "exec", shared_workspace, "--json", "--"), 2, "invalid_argument")
    assert module_roost.json("workspace", "status", shared_workspace)["exec_count"] == before


def test_a_taken_name_is_a_conflict(roost: RoostCli) -> None:
    ws_id = roost.create("--name", "twin")
    error = roost.error(roost("workspace", "create", "debian:12", "--name", "twin", "--json"), 4, "name_taken")
    assert "--name" in error["hint"]
    assert roost.workspace_dirs() == [ws_id]
    other = roost.create()
    roost.error(roost("workspace", "update", other, "--name", "twin", "--json"), 4, "name_taken")
    roost("workspace", "delete", ws_id, check_rc=0)
    roost("workspace", "delete", other, check_rc=0)


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "/workspace/../etc/passwd"])
def test_file_read_outside_workspace_is_refused(module_roost: RoostCli, shared_workspace: str, path: str) -> None:
    proc = module_roost("workspace", "file", "read", shared_workspace, path, "--json")
    module_roost.error(proc, 2, "path_outside_workspace")
    assert proc.stdout == ""


def test_file_read_above_the_per_call_limit_is_refused(module_roost: RoostCli, shared_workspace: str) -> None:
    proc = module_roost(
        "workspace", "file", "read", shared_workspace, "seeded.txt", "--max-bytes", "100000000", "--json"
    )
    error = module_roost.error(proc, 2, "read_too_large")
    assert "offset" in error["hint"]
    assert proc.stdout == ""


# -- commands that fail ------------------------------------------------------------


def test_a_missing_command_exits_127(module_roost: RoostCli, shared_workspace: str) -> None:
    proc = module_roost("workspace", "exec", shared_workspace, "--json", "--", "no-such-command-xyz")
    error = module_roost.error(proc, 127, "command_not_found")
    assert "no-such-command-xyz" in error["message"]


def test_a_command_past_its_timeout_exits_124(module_roost: RoostCli, shared_workspace: str) -> None:
    started = time.monotonic()
    proc = module_roost("workspace", "exec", shared_workspace, "--json", "--timeout", "0.3", "--", "sleep", "5")
    assert time.monotonic() - started < 3.5
    module_roost.error(proc, 124, "exec_timeout")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make the patch")
def test_a_patch_that_does_not_apply_changes_no_file(
    module_roost: RoostCli, shared_workspace: str, seed_dir: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(seed_dir, repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, timeout=10)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, timeout=10)
    (repo / "greeting.py").write_text((repo / "greeting.py").read_text().replace("hello", "bonjour"))
    (repo / "sub" / "inner.txt").write_text("INNER\n")
    patch = subprocess.run(["git", "diff"], cwd=repo, check=True, capture_output=True, text=True, timeout=10).stdout
    # The workspace's copy of the second file has moved on, so the patch as a whole must not apply.
    module_roost("workspace", "file", "write", shared_workspace, "sub/inner.txt", "--content", "edited\n", check_rc=0)

    proc = module_roost("workspace", "patch", "apply", shared_workspace, "--patch", patch, "--json")
    assert proc.returncode != 0
    error = module_roost.error(proc, proc.returncode, "patch_rejected")
    assert "inner.txt" in error["message"]
    read = module_roost("workspace", "file", "read", shared_workspace, "greeting.py", check_rc=0)
    assert read.stdout == (seed_dir / "greeting.py").read_text()
    read = module_roost("workspace", "file", "read", shared_workspace, "sub/inner.txt", check_rc=0)
    assert read.stdout == "edited\n"


# -- broken workspaces -------------------------------------------------------------


def test_an_agent_killed_mid_exec_fails_the_exec_promptly_and_marks_the_workspace_unhealthy(roost: RoostCli) -> None:
    ws_id = roost.create()
    agent_pid = roost.record(ws_id)["boot"]["agent_pid"]
    running = roost.popen("workspace", "exec", ws_id, "--json", "--", "sleep", "30")
    try:
        sleeper = wait_until(
            lambda: next(
                (p for p in pids_with_env("ROOST_WORKSPACE_ID", ws_id) if cmdline(p) == ["sleep", "30"]), None
            ),
            timeout=10,
            what="the exec to start",
        )
        killed_at = time.monotonic()
        os.kill(agent_pid, signal.SIGKILL)
        _, stderr = running.communicate(timeout=10)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert time.monotonic() - killed_at < 5
    assert running.returncode == 5, stderr
    roost.error(subprocess.CompletedProcess(running.args, 5, "", stderr), 5, "agent_disconnected")

    info = roost.json("workspace", "status", ws_id)
    assert info["state"] == "unhealthy"
    assert info["health"] and info["health"] != "ok"
    roost.error(roost("workspace", "exec", ws_id, "--json", "--", "true"), 5, "workspace_unhealthy")

    roost("workspace", "delete", ws_id, check_rc=0)
    assert roost.workspace_dirs() == []
    wait_until(lambda: not pid_alive(sleeper), timeout=5, what="the orphaned command to be killed")


def test_a_corrupt_record_is_reported_and_force_delete_removes_it(roost: RoostCli) -> None:
    ws_id = roost.create()
    agent_pid = roost.record(ws_id)["boot"]["agent_pid"]
    roost.record_path(ws_id).write_text("{ this is not json")

    error = roost.error(roost("workspace", "status", ws_id, "--json"), 5, "workspace_corrupt")
    assert "--force" in error["hint"]
    roost.error(roost("workspace", "delete", ws_id, "--json"), 5, "workspace_corrupt")
    assert roost.workspace_dirs() == [ws_id]

    roost("workspace", "delete", ws_id, "--force", check_rc=0)
    assert roost.workspace_dirs() == []
    wait_until(lambda: not pid_alive(agent_pid), timeout=5, what="the agent of the corrupt workspace to stop")


def test_concurrent_updates_of_one_workspace_all_land(module_roost: RoostCli, shared_workspace: str) -> None:
    racers = [module_roost.popen("workspace", "update", shared_workspace, "--label", f"k{n}=v{n}") for n in range(10)]
    outcomes = [(done.returncode, done.stderr) for done in map(module_roost.finish, racers)]
    assert outcomes == [(0, "")] * 10
    labels = module_roost.record(shared_workspace)["labels"]
    assert {f"k{n}": f"v{n}" for n in range(10)}.items() <= labels.items()
    assert module_roost.json("workspace", "status", shared_workspace)["labels"] == labels


def test_exec_in_a_stopped_workspace_says_how_to_start_it(roost: RoostCli) -> None:
    ws_id = roost.create()
    roost("workspace", "stop", ws_id, check_rc=0)
    roost.error(roost("workspace", "exec", ws_id, "--json", "--", "true"), 4, "workspace_stopped")
    assert roost.json("workspace", "start", ws_id)["state"] == "running"
    roost("workspace", "exec", ws_id, "--", "true", check_rc=0)
