"""The `roost` CLI end to end: each call a separate process, state carried by `$ROOST_HOME`."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import pids_with_env, wait_until
from roost import __version__

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e

ID_PATTERN = re.compile(r"ws-[0-9a-f]+")


@dataclass(frozen=True)
class Demo:
    id: str
    create_stdout: str


@pytest.fixture(scope="module")
def demo(module_roost: RoostCli, seed_dir: Path) -> Iterator[Demo]:
    """The workspace `demo`, named, labelled and seeded, shared by this module's flow tests."""
    create = ["workspace", "create", "debian:12", "--name", "demo", "--label", "team=a", "--seed-path", str(seed_dir)]
    proc = module_roost(*create, "--id-only", check_rc=0)
    yield Demo(proc.stdout.strip(), proc.stdout)
    module_roost("workspace", "delete", "demo", "--force")


# -- host commands ----------------------------------------------------------------


def test_version_prints_the_package_version(roost: RoostCli) -> None:
    proc = roost("--version", check_rc=0)
    assert proc.stdout == f"roost {__version__}\n"


def test_doctor_json_names_mock_available_and_warns_it_is_not_isolated(roost: RoostCli) -> None:
    report = roost.json("doctor")
    assert report["default_backend"] == "mock"
    assert report["backends"]["mock"]["ok"] is True
    isolation = [check for check in report["checks"] if check["name"] == "isolation"]
    assert len(isolation) == 1
    assert isolation[0]["ok"] is False
    assert "NOT isolated" in isolation[0]["detail"]


def test_env_list_json_names_debian_12_with_its_packages(roost: RoostCli) -> None:
    envs = {env["name"]: env for env in roost.json("env", "list")["envs"]}
    assert "debian:12" in envs
    assert "git" in envs["debian:12"]["packages"]
    assert envs["debian:12"]["description"]


# -- roost run --------------------------------------------------------------------


def test_run_exits_with_the_commands_code_keeps_streams_apart_and_leaves_nothing(roost: RoostCli) -> None:
    proc = roost("run", "debian:12", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert proc.returncode == 7
    assert proc.stdout == "out\n"
    assert "err\n" in proc.stderr
    assert "out" not in proc.stderr
    assert roost.json("workspace", "list") == {"workspaces": []}
    assert roost.workspace_dirs() == []


def test_run_json_prints_one_exec_result_document(roost: RoostCli) -> None:
    result = roost.json("run", "debian:12", "--", "sh", "-c", "echo hi; echo oops >&2")
    assert result["exit_code"] == 0
    assert result["stdout"] == "hi\n"
    assert result["stderr"] == "oops\n"
    assert result["timed_out"] is False
    assert result["stdout_truncated"] is False
    assert result["signal"] is None
    assert result["duration_ms"] >= 0
    assert result["exec_id"] == 1


def test_run_timeout_kills_the_command_promptly_and_exits_124(roost: RoostCli) -> None:
    started = time.monotonic()
    proc = roost("run", "--json", "--timeout", "0.5", "debian:12", "--", "sleep", "5")
    elapsed = time.monotonic() - started
    error = roost.error(proc, 124, "exec_timeout")
    assert elapsed < 3.5
    assert "--timeout" in error["hint"]
    assert json.loads(proc.stdout)["timed_out"] is True
    assert roost.workspace_dirs() == []


def test_run_of_a_missing_command_exits_127(roost: RoostCli) -> None:
    proc = roost("run", "--json", "debian:12", "--", "no-such-command-xyz")
    roost.error(proc, 127, "command_not_found")
    assert roost.workspace_dirs() == []


# -- one workspace across many processes --------------------------------------------


def test_create_id_only_prints_just_the_id(demo: Demo, module_roost: RoostCli) -> None:
    assert ID_PATTERN.fullmatch(demo.create_stdout.rstrip("\n"))
    assert demo.create_stdout.count("\n") == 1
    info = module_roost.json("workspace", "status", "demo")
    assert info["id"] == demo.id
    assert info["name"] == "demo"
    assert info["labels"] == {"team": "a"}
    assert info["env"] == "debian:12"
    assert info["state"] == "running"
    assert info["isolated"] is False


def test_exec_sees_the_seeded_files(demo: Demo, module_roost: RoostCli) -> None:
    proc = module_roost("workspace", "exec", "demo", "--", "cat", "seeded.txt", "sub/inner.txt", check_rc=0)
    assert proc.stdout == "seeded\ninner\n"


def test_exec_runs_a_single_argument_with_spaces_under_bash(demo: Demo, module_roost: RoostCli) -> None:
    proc = module_roost("workspace", "exec", "demo", "--", "echo a && echo b", check_rc=0)
    assert proc.stdout == "a\nb\n"


def test_exec_dash_c_runs_a_script_and_returns_its_exit_code(demo: Demo, module_roost: RoostCli) -> None:
    proc = module_roost("workspace", "exec", "demo", "-c", "cd sub && pwd", check_rc=0)
    assert proc.stdout.rstrip("\n").endswith("/sub")
    module_roost("workspace", "exec", "demo", "-c", "echo no >&2; exit 3", check_rc=3)


def test_exec_takes_cwd_env_and_piped_stdin(demo: Demo, module_roost: RoostCli) -> None:
    options = ["--cwd", "sub", "--env", "K=V", "--env", "EMPTY=", "--stdin", "-"]
    script = 'printf "%s|%s|%s|" "$(basename "$PWD")" "$K" "$EMPTY"; cat'
    proc = module_roost("workspace", "exec", "demo", *options, "--", "sh", "-c", script, input="piped in\n", check_rc=0)
    assert proc.stdout == "sub|V||piped in\n"


def test_exec_closes_stdin_unless_asked(demo: Demo, module_roost: RoostCli) -> None:
    proc = module_roost("workspace", "exec", "demo", "--", "cat", input="ignored\n", check_rc=0)
    assert proc.stdout == ""


def test_a_workspace_can_be_named_by_a_unique_id_prefix(demo: Demo, module_roost: RoostCli) -> None:
    prefix = demo.id[: len("ws-") + 4]
    assert module_roost.json("workspace", "status", prefix)["id"] == demo.id
    proc = module_roost("workspace", "exec", prefix, "--", "echo", "by prefix", check_rc=0)
    assert proc.stdout == "by prefix\n"


def test_sync_push_copies_into_dest_and_delete_mirrors(demo: Demo, module_roost: RoostCli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "p1.txt").write_text("one\n")
    (src / "d" / "p2.txt").write_text("two\n")
    module_roost("workspace", "sync", "push", "demo", str(src), "--dest", "/workspace/pushed", check_rc=0)
    proc = module_roost("workspace", "exec", "demo", "-c", "cat pushed/p1.txt pushed/d/p2.txt; touch pushed/extra")
    assert proc.stdout == "one\ntwo\n"

    result = module_roost.json("workspace", "sync", "push", "demo", str(src), "--dest", "/workspace/pushed", "--delete")
    assert result["deleted"] == 1
    proc = module_roost("workspace", "exec", "demo", "--cwd", "pushed", "--", "find", ".", "-type", "f", check_rc=0)
    assert sorted(proc.stdout.split()) == ["./d/p2.txt", "./p1.txt"]


def test_file_write_read_list_stat_and_delete(demo: Demo, module_roost: RoostCli) -> None:
    proc = module_roost("workspace", "file", "write", "demo", "notes/a.txt", "--content", "hi", check_rc=0)
    assert "/workspace/notes/a.txt" in proc.stdout
    assert module_roost("workspace", "file", "read", "demo", "notes/a.txt", check_rc=0).stdout == "hi"

    listing = module_roost.json("workspace", "file", "list", "demo", "notes", "-r")
    assert [(e["path"], e["type"], e["size"]) for e in listing["entries"]] == [("/workspace/notes/a.txt", "file", 2)]
    entry = module_roost.json("workspace", "file", "stat", "demo", "/workspace/notes/a.txt")
    assert (entry["path"], entry["type"], entry["size"], entry["mode"]) == ("/workspace/notes/a.txt", "file", 2, 0o644)

    module_roost("workspace", "file", "delete", "demo", "notes/a.txt", check_rc=0)
    assert module_roost.json("workspace", "file", "list", "demo", "notes")["entries"] == []


def test_file_read_gives_a_window_and_says_how_to_continue(demo: Demo, module_roost: RoostCli) -> None:
    module_roost("workspace", "file", "write", "demo", "window.txt", "--content", "0123456789", check_rc=0)
    proc = module_roost(
        "workspace", "file", "read", "demo", "window.txt", "--offset", "2", "--max-bytes", "3", check_rc=0
    )
    assert proc.stdout == "234"
    assert "continue with --offset 5" in proc.stderr
    proc = module_roost("workspace", "file", "read", "demo", "window.txt", "--offset", "5", check_rc=0)
    assert proc.stdout == "56789"
    assert proc.stderr == ""


def test_file_write_from_a_host_file_or_stdin_with_a_mode(demo: Demo, module_roost: RoostCli, tmp_path: Path) -> None:
    host_file = tmp_path / "tool.sh"
    host_file.write_text("#!/bin/sh\necho tool ran\n")
    module_roost(
        "workspace", "file", "write", "demo", "bin/tool.sh", "--from-file", str(host_file), "--mode", "0755", check_rc=0
    )
    assert module_roost.json("workspace", "file", "stat", "demo", "bin/tool.sh")["mode"] == 0o755
    assert module_roost("workspace", "exec", "demo", "--", "./bin/tool.sh", check_rc=0).stdout == "tool ran\n"

    module_roost("workspace", "file", "write", "demo", "from-stdin.txt", "--stdin", input="via stdin\n", check_rc=0)
    assert module_roost("workspace", "file", "read", "demo", "from-stdin.txt", check_rc=0).stdout == "via stdin\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make the patch")
def test_patch_from_git_diff_dry_runs_without_change_then_applies(
    demo: Demo, module_roost: RoostCli, seed_dir: Path, tmp_path: Path
) -> None:
    patch_file = tmp_path / "change.diff"
    patch_file.write_text(git_diff(seed_dir, tmp_path / "repo", {"greeting.py": ("hello", "hello, roost")}))
    original = (seed_dir / "greeting.py").read_text()

    proc = module_roost("workspace", "patch", "apply", "demo", "--patch-file", str(patch_file), "--dry-run", check_rc=0)
    assert "would apply" in proc.stdout
    assert "greeting.py" in proc.stdout
    assert module_roost("workspace", "file", "read", "demo", "greeting.py", check_rc=0).stdout == original

    result = module_roost.json("workspace", "patch", "apply", "demo", "--patch-file", str(patch_file))
    assert [(f["path"], f["action"]) for f in result["files"]] == [("/workspace/greeting.py", "modified")]
    new = module_roost("workspace", "file", "read", "demo", "greeting.py", check_rc=0).stdout
    assert new == original.replace("hello", "hello, roost")


def git_diff(original: Path, repo: Path, changes: dict[str, tuple[str, str]]) -> str:
    """A real `git diff` after replacing text in some files of a copy of `original`."""
    shutil.copytree(original, repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, timeout=10)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, timeout=10)
    for name, (old, new) in changes.items():
        path = repo / name
        path.write_text(path.read_text().replace(old, new))
    diff = subprocess.run(["git", "diff"], cwd=repo, check=True, capture_output=True, text=True, timeout=10).stdout
    assert diff.startswith("diff --git"), diff
    return diff


def test_logs_list_execs_and_print_one_execs_output(demo: Demo, module_roost: RoostCli) -> None:
    exec_id = module_roost.json("workspace", "exec", "demo", "--", "echo", "logged-marker")["exec_id"]
    proc = module_roost("workspace", "logs", "demo", check_rc=0)
    assert re.search(rf"^{exec_id}\s.*echo logged-marker$", proc.stdout, re.MULTILINE), proc.stdout
    history = module_roost.json("workspace", "logs", "demo")
    assert {"exec_id": exec_id, "command": "echo logged-marker", "exit_code": 0}.items() <= next(
        e for e in history["execs"] if e["exec_id"] == exec_id
    ).items()
    proc = module_roost("workspace", "logs", "demo", "--exec", str(exec_id), check_rc=0)
    assert proc.stdout == "logged-marker\n"


def test_list_json_and_human_status_show_the_workspace_as_not_isolated(demo: Demo, module_roost: RoostCli) -> None:
    listed = module_roost.json("workspace", "list")["workspaces"]
    assert [(w["id"], w["name"], w["backend"], w["isolated"]) for w in listed] == [(demo.id, "demo", "mock", False)]
    proc = module_roost("workspace", "status", "demo", check_rc=0)
    assert demo.id in proc.stdout
    assert "NOT isolated" in proc.stdout


# -- lifecycle on workspaces of their own ------------------------------------------


def test_update_relabels_and_sets_a_ttl_that_status_reflects(roost: RoostCli) -> None:
    ws_id = roost.create("--name", "upd", "--label", "team=a", "--label", "keep=1")
    roost("workspace", "update", "upd", "--label", "x=y", "--unlabel", "team", "--ttl", "600", check_rc=0)
    info = roost.json("workspace", "status", ws_id)
    assert info["labels"] == {"keep": "1", "x": "y"}
    assert info["ttl_seconds"] == 600
    assert info["expires_at"]
    roost("workspace", "delete", ws_id, check_rc=0)


def test_a_deleted_workspace_is_gone_and_not_found(roost: RoostCli) -> None:
    ws_id = roost.create("--name", "doomed")
    proc = roost("workspace", "delete", "doomed", check_rc=0)
    assert ws_id in proc.stdout
    assert roost.workspace_dirs() == []
    roost.error(roost("workspace", "status", "doomed", "--json"), 3, "workspace_not_found")
    roost.error(roost("workspace", "status", ws_id, "--json"), 3, "workspace_not_found")


def test_ctrl_c_during_run_deletes_the_workspace_and_its_command(roost: RoostCli, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    proc = roost.popen("run", "debian:12", "--", "sh", "-c", f"touch {marker}; exec sleep 300")
    try:
        wait_until(marker.exists, timeout=15, what="the command to start")
        ws_id = roost.workspace_dirs()[0]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert roost.workspace_dirs() == []
    assert pids_with_env("ROOST_WORKSPACE_ID", ws_id) == set()
