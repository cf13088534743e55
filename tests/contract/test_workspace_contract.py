"""What every backend promises, checked through the SDK only."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from helpers import cmdline, kill_agent, pid_alive, pids_with_env, recorded_root_pid, wait_until
from roost import Roost, RoostError, Workspace
from roost.backends.processes import WORKSPACE_MARKER
from roost.store.records import WorkspaceStore
from roost.workspace.engine import read_boot

pytestmark = pytest.mark.contract

PROMPT = 5.0  # seconds within which a dead agent must be noticed
AGENT_GONE_CODES = ("agent_unreachable", "agent_disconnected", "workspace_unhealthy")


def _workspace_dirs(roost: Roost) -> list[str]:
    root = roost.home / "workspaces"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _seed_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("beta\n")
    (root / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)))
    (root / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("a.txt", root / "link")
    return root


def _snapshot(ws: Workspace) -> dict[str, bytes]:
    listing = ws.files.list("/workspace", recursive=True)
    return {e.path: ws.files.read(e.path).data for e in listing.entries if e.type == "file"}


# -- creating ----------------------------------------------------------------------


def test_create_seeds_the_workspace_from_a_directory(roost: Roost, tmp_path: Path) -> None:
    seed = _seed_tree(tmp_path / "seed")
    ws = roost.create_workspace("debian:12", seed_path=seed)
    assert ws.files.read("a.txt").text == "alpha\n"
    assert ws.files.read("/workspace/sub/b.txt").text == "beta\n"
    assert ws.files.read("sub/deeper/c.bin").data == bytes(range(256))
    assert ws.files.stat("run.sh").mode & 0o111
    link = ws.files.stat("link")
    assert (link.type, link.target) == ("symlink", "a.txt")
    assert ws.files.stat("empty").type == "dir"
    assert ws.exec("./run.sh").stdout == "ran\n"
    info = ws.info()
    assert info.state == "running" and info.env == "debian:12"


def test_create_seeds_the_workspace_from_a_tar_gz(roost: Roost, tmp_path: Path) -> None:
    archive = tmp_path / "seed.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("README.md", b"# hi\n"), ("pkg/mod.py", b"X = 1\n")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    ws = roost.create_workspace("debian:12", seed_path=archive)
    assert ws.files.read("README.md").text == "# hi\n"
    assert ws.exec(["python3", "-c", "import pkg.mod; print(pkg.mod.X)"]).stdout == "1\n"


def test_create_records_name_labels_and_ttl(roost: Roost) -> None:
    ws = roost.create_workspace("debian:12", name="alpha", labels={"team": "core"}, ttl_seconds=3600)
    info = ws.info()
    assert (info.name, info.labels, info.ttl_seconds) == ("alpha", {"team": "core"}, 3600)
    assert info.expires_at is not None
    assert roost.workspace("alpha").id == ws.id
    assert [w.id for w in roost.list_workspaces()] == [ws.id]


def test_unknown_env_is_env_not_found_and_leaves_nothing(roost: Roost) -> None:
    with pytest.raises(RoostError) as info:
        roost.create_workspace("Plan9:4")  # neither a catalog name nor an image reference
    assert info.value.code == "env_not_found"
    assert info.value.hint
    assert _workspace_dirs(roost) == []


def test_missing_seed_is_seed_not_found_and_leaves_no_workspace_behind(roost: Roost, tmp_path: Path) -> None:
    with pytest.raises(RoostError) as info:
        roost.create_workspace("debian:12", seed_path=tmp_path / "does-not-exist")
    assert info.value.code == "seed_not_found"
    assert _workspace_dirs(roost) == []


def test_a_taken_name_is_refused(roost: Roost) -> None:
    first = roost.create_workspace("debian:12", name="taken")
    with pytest.raises(RoostError) as info:
        roost.create_workspace("debian:12", name="taken")
    assert info.value.code == "name_taken"
    assert _workspace_dirs(roost) == [first.id]


def test_unknown_workspace_is_workspace_not_found(roost: Roost) -> None:
    for ref in ("ws-0000000000", "nobody"):
        with pytest.raises(RoostError) as info:
            roost.workspace(ref)
        assert info.value.code == "workspace_not_found"


def test_ephemeral_workspace_is_deleted_when_its_block_ends(roost: Roost) -> None:
    with roost.create_workspace("debian:12") as ws:
        assert ws.exec("true").ok
        ws_id = ws.id
    assert ws_id not in _workspace_dirs(roost)


def test_run_is_ready_before_its_command_runs_and_deletes_its_workspace_after(roost: Roost) -> None:
    seen: list[object] = []
    result = roost.run(
        "debian:12",
        "cat -",
        stdin="fed",
        on_ready=lambda: seen.append([ws.state for ws in roost.list_workspaces()]),
        on_output=lambda channel, data: seen.append((channel, data)),
    )
    assert (result.exit_code, result.stdout) == (0, "fed")
    assert seen == [["running"], ("stdout", b"fed")]
    assert roost.list_workspaces() == []


# -- exec --------------------------------------------------------------------------


def test_exec_returns_exit_code_and_separate_output(workspace: Workspace) -> None:
    result = workspace.exec("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and not result.timed_out
    assert result.exec_id == 1


def test_exec_takes_argv_stdin_env_and_cwd(workspace: Workspace) -> None:
    workspace.files.write("dir/.keep", "")
    assert workspace.exec(["printf", "%s", "$NOT; expanded"]).stdout == "$NOT; expanded"
    assert workspace.exec("tr a-z A-Z", stdin="shout").stdout == "SHOUT"
    assert workspace.exec('printf %s "$WHO"', env={"WHO": "me"}).stdout == "me"
    assert workspace.exec("basename $PWD", cwd="/workspace/dir").stdout == "dir\n"


def test_exec_timeout_is_reported(workspace: Workspace) -> None:
    started = time.monotonic()
    result = workspace.exec("sleep 30", timeout=0.3)
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - started < PROMPT


def test_exec_output_cap_truncates(workspace: Workspace) -> None:
    result = workspace.exec("head -c 10000 /dev/zero", max_output_bytes=100)
    assert len(result.stdout) == 100
    assert result.stdout_bytes == 10000 and result.stdout_truncated


def test_exec_errors_carry_stable_codes(workspace: Workspace) -> None:
    with pytest.raises(RoostError) as missing:
        workspace.exec(["roost-no-such-command"])
    with pytest.raises(RoostError) as bad_cwd:
        workspace.exec("true", cwd="/workspace/nowhere")
    assert missing.value.code == "command_not_found"
    assert bad_cwd.value.code == "path_not_found"


def test_exec_streams_output_to_a_callback(workspace: Workspace) -> None:
    chunks: list[tuple[str, bytes]] = []
    result = workspace.exec("echo one; echo two >&2", on_output=lambda ch, data: chunks.append((ch, data)))
    assert b"".join(d for ch, d in chunks if ch == "stdout") == b"one\n"
    assert b"".join(d for ch, d in chunks if ch == "stderr") == b"two\n"
    assert result.stdout == "one\n"


def test_concurrent_first_calls_from_threads_all_succeed(roost: Roost, workspace: Workspace) -> None:
    workspace.files.write("shared.txt", "shared")
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    with Roost(home=roost.home) as fresh:  # no connection yet: every thread races to open one
        handle = fresh.workspace(workspace.id)

        def read() -> None:
            barrier.wait(PROMPT)
            try:
                results.append(handle.files.read("shared.txt").text)
            except RoostError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(PROMPT)
    assert errors == []
    assert results == ["shared"] * 8


# -- files -------------------------------------------------------------------------


def test_files_round_trip(workspace: Workspace) -> None:
    written = workspace.files.write("notes/today.md", "# today\n", mode=0o600)
    assert (written.path, written.size, written.mode) == ("/workspace/notes/today.md", 8, 0o600)
    workspace.files.write("blob", bytes(range(256)))
    assert workspace.files.read("notes/today.md").text == "# today\n"
    assert workspace.files.read("blob").data == bytes(range(256))
    window = workspace.files.read("blob", offset=250, max_bytes=100)
    assert (window.data, window.offset, window.size, window.eof) == (bytes(range(250, 256)), 250, 256, True)
    entry = workspace.files.stat("notes/today.md")
    assert (entry.type, entry.size, entry.mode) == ("file", 8, 0o600)
    names = [e.path for e in workspace.files.list("/workspace", recursive=True).entries]
    assert {"/workspace/blob", "/workspace/notes", "/workspace/notes/today.md"} <= set(names)
    assert workspace.files.delete("blob").type == "file"
    with pytest.raises(RoostError) as gone:
        workspace.files.read("blob")
    assert gone.value.code == "path_not_found"
    with pytest.raises(RoostError) as not_empty:
        workspace.files.delete("notes")
    assert not_empty.value.code == "directory_not_empty"
    assert workspace.files.delete("notes", recursive=True).type == "dir"


def test_files_outside_the_workspace_are_refused(workspace: Workspace) -> None:
    for call in (
        lambda: workspace.files.read("/etc/passwd"),
        lambda: workspace.files.write("../escape", "x"),
        lambda: workspace.files.delete("/workspace/../tmp"),
    ):
        with pytest.raises(RoostError) as info:
            call()
        assert info.value.code == "path_outside_workspace"


def test_files_written_are_seen_by_exec_and_the_other_way_round(workspace: Workspace) -> None:
    workspace.files.write("in.txt", "from files")
    assert workspace.exec("cat in.txt; echo -n from exec > out.txt").stdout == "from files"
    assert workspace.files.read("out.txt").text == "from exec"


# -- sync and patch ------------------------------------------------------------------


def test_sync_push_adds_files_and_keeps_unrelated_ones(workspace: Workspace, tmp_path: Path) -> None:
    workspace.files.write("keep.txt", "mine")
    workspace.files.write("sub/old.txt", "old")
    source = tmp_path / "push"
    (source / "sub").mkdir(parents=True)
    (source / "new.txt").write_text("new")
    (source / "sub" / "more.txt").write_text("more")
    result = workspace.sync_push(source)
    assert result.files == 2 and result.deleted == 0
    assert workspace.files.read("new.txt").text == "new"
    assert workspace.files.read("sub/more.txt").text == "more"
    assert workspace.files.read("keep.txt").text == "mine"
    assert workspace.files.read("sub/old.txt").text == "old"


def test_sync_push_with_delete_mirrors_the_source(workspace: Workspace, tmp_path: Path) -> None:
    workspace.files.write("keep.txt", "mine")
    workspace.files.write("sub/old.txt", "old")
    source = tmp_path / "push"
    (source / "sub").mkdir(parents=True)
    (source / "new.txt").write_text("new")
    (source / "sub" / "more.txt").write_text("more")
    result = workspace.sync_push(source, delete=True)
    assert result.deleted == 2
    assert set(_snapshot(workspace)) == {"/workspace/new.txt", "/workspace/sub/more.txt"}


def test_sync_push_into_a_subdirectory(workspace: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "push"
    source.mkdir()
    (source / "x.txt").write_text("x")
    assert workspace.sync_push(source, dest="/workspace/vendor/lib").dest == "/workspace/vendor/lib"
    assert workspace.files.read("vendor/lib/x.txt").text == "x"


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to produce a real `git diff`")
def test_apply_patch_applies_a_real_git_diff_and_rejects_a_stale_one(roost: Roost, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.py").write_text("def greet():\n    return 'hello'\n\n\nprint(greet())\n")
    (repo / "obsolete.txt").write_text("remove me\n")
    (repo / "README").write_text("line 1\nline 2\nline 3\n")
    ws = roost.create_workspace("debian:12", seed_path=repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    (repo / "src" / "app.py").write_text("def greet(name):\n    return f'hello {name}'\n\n\nprint(greet('you'))\n")
    (repo / "README").write_text("line 1\nline 2 changed\nline 3\n")
    (repo / "obsolete.txt").unlink()
    (repo / "src" / "new_module.py").write_text("VALUE = 42\n")
    _git(repo, "add", "-N", "src/new_module.py")
    patch = _git(repo, "diff")
    assert "diff --git" in patch

    result = ws.apply_patch(patch)
    actions = {f.path.removeprefix("/workspace/"): f.action for f in result.files}
    assert set(actions) == {"src/app.py", "README", "obsolete.txt", "src/new_module.py"}
    assert ws.files.read("src/app.py").text == (repo / "src" / "app.py").read_text()
    assert ws.files.read("README").text == "line 1\nline 2 changed\nline 3\n"
    assert ws.files.read("src/new_module.py").text == "VALUE = 42\n"
    with pytest.raises(RoostError) as gone:
        ws.files.stat("obsolete.txt")
    assert gone.value.code == "path_not_found"
    assert ws.exec(["python3", "src/app.py"]).stdout == "hello you\n"

    before = _snapshot(ws)
    with pytest.raises(RoostError) as rejected:
        ws.apply_patch(patch)  # already applied: its context no longer matches
    assert rejected.value.code == "patch_rejected"
    assert rejected.value.hint
    assert _snapshot(ws) == before


def test_a_patch_that_fails_in_its_last_file_changes_no_file(workspace: Workspace) -> None:
    workspace.files.write("a.txt", "one\n")
    workspace.files.write("b.txt", "two\n")
    patch = textwrap.dedent(
        """\
        --- a/a.txt
        +++ b/a.txt
        @@ -1 +1 @@
        -one
        +ONE
        --- a/b.txt
        +++ b/b.txt
        @@ -1 +1 @@
        -not what b says
        +TWO
        """
    )
    with pytest.raises(RoostError) as info:
        workspace.apply_patch(patch)
    assert info.value.code == "patch_rejected"
    assert _snapshot(workspace) == {"/workspace/a.txt": b"one\n", "/workspace/b.txt": b"two\n"}


def test_dry_run_patch_changes_nothing(workspace: Workspace) -> None:
    workspace.files.write("a.txt", "one\n")
    result = workspace.apply_patch("--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+ONE\n", dry_run=True)
    assert result.dry_run and [f.path for f in result.files] == ["/workspace/a.txt"]
    assert workspace.files.read("a.txt").text == "one\n"


# -- history -----------------------------------------------------------------------


def test_logs_record_execs_and_exec_output_pages_them(workspace: Workspace) -> None:
    ok = workspace.exec("printf hello-world")
    failed = workspace.exec("echo bad >&2; exit 4")
    with pytest.raises(RoostError):
        workspace.exec(["roost-no-such-command"])
    logs = workspace.logs()
    assert [(e.exec_id, e.command, e.exit_code) for e in logs[:2]] == [
        (ok.exec_id, "printf hello-world", 0),
        (failed.exec_id, "echo bad >&2; exit 4", 4),
    ]
    assert logs[2].error == "command_not_found"
    assert workspace.logs(limit=1) == logs[-1:]
    assert workspace.info().exec_count == 3

    assert ok.exec_id is not None and failed.exec_id is not None
    page = workspace.exec_output(ok.exec_id, "stdout", offset=6, max_bytes=3)
    assert (page.data, page.offset, page.size, page.eof) == ("wor", 6, 11, False)
    assert workspace.exec_output(ok.exec_id, offset=6).data == "world"
    assert workspace.exec_output(failed.exec_id, "stderr").data == "bad\n"
    with pytest.raises(RoostError) as unknown:
        workspace.exec_output(999)
    assert unknown.value.code == "exec_not_found"


# -- lifetime ----------------------------------------------------------------------


def test_ttl_reaping_deletes_an_expired_workspace(roost: Roost) -> None:
    doomed = roost.create_workspace("debian:12", ttl_seconds=1)
    lasting = roost.create_workspace("debian:12", ttl_seconds=3600)
    agent = recorded_root_pid(roost.home, doomed.id)
    WorkspaceStore(roost.home, read_boot).update(
        doomed.id, lambda r: r.replace(expires_at="2000-01-01T00:00:00.000000Z")
    )
    assert roost.reap_expired() == [doomed.id]
    assert _workspace_dirs(roost) == [lasting.id]
    assert not pid_alive(agent)
    with pytest.raises(RoostError) as info:
        roost.workspace(doomed.id)
    assert info.value.code == "workspace_not_found"
    assert lasting.exec("true").ok


def test_update_changes_name_labels_and_ttl(workspace: Workspace, roost: Roost) -> None:
    info = workspace.update(name="renamed", labels={"a": "1", "b": "2"})
    assert (info.name, info.labels) == ("renamed", {"a": "1", "b": "2"})
    info = workspace.update(remove_labels=["a"], ttl_seconds=60)
    assert (info.labels, info.ttl_seconds) == ({"b": "2"}, 60)
    assert workspace.update(clear_ttl=True).expires_at is None
    assert roost.workspace("renamed").id == workspace.id


def test_a_killed_agent_makes_the_workspace_unhealthy_not_a_traceback(roost: Roost, workspace: Workspace) -> None:
    assert workspace.exec("true").ok  # a live connection exists when the agent dies
    kill_agent(roost.home, workspace.id)
    started = time.monotonic()
    with pytest.raises(RoostError) as info:
        workspace.exec("true")
    assert info.value.code in AGENT_GONE_CODES
    assert info.value.hint
    assert time.monotonic() - started < PROMPT
    status = workspace.info()
    assert status.state == "unhealthy"
    assert status.health
    with pytest.raises(RoostError) as again:
        workspace.exec("true")
    assert again.value.code == "workspace_unhealthy"
    with Roost(home=roost.home) as fresh:  # another process sees the same truth
        assert fresh.workspace(workspace.id).info().state == "unhealthy"
    workspace.delete()
    assert workspace.id not in _workspace_dirs(roost)


def test_a_fresh_client_notices_a_dead_agent_promptly(roost: Roost, workspace: Workspace) -> None:
    kill_agent(roost.home, workspace.id)
    started = time.monotonic()
    with Roost(home=roost.home) as fresh, pytest.raises(RoostError) as info:
        fresh.workspace(workspace.id).exec("true")
    assert info.value.code in AGENT_GONE_CODES
    assert time.monotonic() - started < PROMPT


def test_an_agent_killed_mid_exec_ends_the_exec_with_agent_disconnected(roost: Roost, workspace: Workspace) -> None:
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            workspace.exec("touch started; sleep 30")
        except RoostError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(lambda: "/workspace/started" in _paths(workspace), what="the exec to start")
        kill_agent(roost.home, workspace.id)
        started = time.monotonic()
        thread.join(PROMPT)
        assert not thread.is_alive(), "the exec did not notice its agent die"
        assert time.monotonic() - started < PROMPT
    finally:
        thread.join(PROMPT)
    error = outcome.get("error")
    assert isinstance(error, RoostError) and error.code == "agent_disconnected"
    assert workspace.logs()[-1].error == "agent_disconnected"
    workspace.delete()
    assert not pids_with_env(WORKSPACE_MARKER, workspace.id), "delete left the orphaned command running"


def _paths(workspace: Workspace) -> set[str]:
    return {e.path for e in workspace.files.list("/workspace").entries}


def test_delete_kills_a_double_forked_daemon_and_removes_the_directory(roost: Roost) -> None:
    ws = roost.create_workspace("debian:12")
    result = ws.exec("sh -c 'setsid sleep 300 >/dev/null 2>&1 &'")
    assert result.ok

    def daemon() -> list[int]:
        return [p for p in pids_with_env(WORKSPACE_MARKER, ws.id) if cmdline(p)[:2] == ["sleep", "300"]]

    (pid,) = wait_until(daemon, what="the daemon to show up")
    ws.delete()
    assert not pid_alive(pid)
    assert not pids_with_env(WORKSPACE_MARKER, ws.id)
    assert ws.id not in _workspace_dirs(roost)


_CREATE_AND_EXIT = textwrap.dedent(
    """
    import sys
    from roost import Roost

    roost = Roost(home=sys.argv[1], backend=sys.argv[2])
    ws = roost.create_workspace("debian:12", ephemeral=False)
    ws.files.write("made-by.txt", "the creator")
    print(ws.id)
    """
)


def test_the_agent_outlives_the_process_that_created_it(roost: Roost, backend: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CREATE_AND_EXIT, str(roost.home), backend],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ws = roost.workspace(done.stdout.strip())
    assert ws.info().state == "running"
    assert ws.exec("cat made-by.txt").stdout == "the creator"
