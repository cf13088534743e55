"""patch.apply handler, called directly with an in-memory request."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from roost.agent.context import RequestContext
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.state import AgentState
from roost.protocol import OpError
from roost.protocol.messages import CH_RECORDS
from roost.protocol.records import decode_records

Tree = dict[str, tuple[int, bytes]]


@pytest.fixture
def agent(tmp_path: Path) -> AgentState:
    (tmp_path / "ws").mkdir()
    return AgentState(WorkspacePaths(str(tmp_path / "ws")), str(tmp_path / "state"), str(tmp_path / "scratch"), {})


@pytest.fixture
def ws(agent: AgentState) -> Path:
    return Path(agent.paths.root)


def _apply(agent: AgentState, patch: str, *, as_body: bool = False, **args: object) -> dict[str, object]:
    """The op's result, with the files it streamed as records under `files`."""
    body = patch.encode() if as_body else b""
    if not as_body:
        args["patch"] = patch
    sent: list[bytes] = []

    def send(channel: str, data: bytes) -> None:
        assert channel == CH_RECORDS
        sent.append(data)

    ctx = RequestContext(1, "patch.apply", args, body, send, None, threading.Event())
    result = OpTable(agent).call(ctx).wire_result()
    files = [record for body in sent for record in decode_records(body)]
    assert result["count"] == len(files)
    return {**result, "files": files}


def _reject(agent: AgentState, patch: str, code: str = "patch_rejected") -> OpError:
    with pytest.raises(OpError) as err:
        _apply(agent, patch)
    assert err.value.code == code
    return err.value


def _tree(root: Path) -> Tree:
    tree: Tree = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in dirs:
            path = Path(directory, name)
            tree[f"{path.relative_to(root)}/"] = (stat.S_IMODE(path.stat().st_mode), b"")
        for name in files:
            path = Path(directory, name)
            tree[str(path.relative_to(root))] = (stat.S_IMODE(path.stat().st_mode), path.read_bytes())
    return tree


def _write(root: Path, files: dict[str, str], mode: int = 0o644) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        (root / name).chmod(mode)


NUMBERS = "".join(f"line {n}\n" for n in range(1, 21))

TWO_HUNKS = """\
--- a/numbers.txt
+++ b/numbers.txt
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -17,4 +17,5 @@
 line 17
 line 18
+line 18.5
 line 19
 line 20
"""


def test_modifies_a_file_with_several_hunks_and_keeps_its_mode(agent: AgentState, ws: Path) -> None:
    _write(ws, {"numbers.txt": NUMBERS}, mode=0o755)
    result = _apply(agent, TWO_HUNKS)
    expected = NUMBERS.replace("line 3\n", "line three\n").replace("line 19\n", "line 18.5\nline 19\n")
    assert (ws / "numbers.txt").read_text() == expected
    assert stat.S_IMODE((ws / "numbers.txt").stat().st_mode) == 0o755
    assert result == {
        "files": [{"path": "/workspace/numbers.txt", "action": "modified", "hunks": 2}],
        "dry_run": False,
        "count": 1,
    }


def test_reads_the_patch_from_the_body_when_no_argument_is_given(agent: AgentState, ws: Path) -> None:
    _write(ws, {"numbers.txt": NUMBERS})
    _apply(agent, TWO_HUNKS, as_body=True)
    assert "line three" in (ws / "numbers.txt").read_text()


def test_adds_and_deletes_files(agent: AgentState, ws: Path) -> None:
    _write(ws, {"old.txt": "a\nb\n"})
    patch = """\
--- a/old.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-a
-b
--- /dev/null
+++ b/new/dir/new.txt
@@ -0,0 +1 @@
+hello
"""
    result = _apply(agent, patch)
    made = stat.S_IMODE(ws.stat().st_mode)  # new directories get the umask's default, like ws itself
    assert _tree(ws) == {"new/": (made, b""), "new/dir/": (made, b""), "new/dir/new.txt": (0o644, b"hello\n")}
    assert result["files"] == [
        {"path": "/workspace/old.txt", "action": "deleted", "hunks": 1},
        {"path": "/workspace/new/dir/new.txt", "action": "added", "hunks": 1},
    ]


def test_handles_no_newline_at_end_of_file_on_either_side(agent: AgentState, ws: Path) -> None:
    _write(ws, {"gain.txt": "a\nb", "lose.txt": "a\nb\n"})
    patch = """\
--- a/gain.txt
+++ b/gain.txt
@@ -1,2 +1,2 @@
 a
-b
\\ No newline at end of file
+b
--- a/lose.txt
+++ b/lose.txt
@@ -1,2 +1,2 @@
 a
-b
+c
\\ No newline at end of file
"""
    _apply(agent, patch)
    assert (ws / "gain.txt").read_text() == "a\nb\n"
    assert (ws / "lose.txt").read_text() == "a\nc"


def test_rejects_a_patch_expecting_a_newline_the_file_lacks(agent: AgentState, ws: Path) -> None:
    _write(ws, {"f.txt": "a\nb"})
    _reject(agent, "--- a/f.txt\n+++ b/f.txt\n@@ -2 +2 @@\n-b\n+c\n")
    assert (ws / "f.txt").read_text() == "a\nb"


def test_mismatching_context_rejects_and_changes_nothing_even_after_a_good_file(agent: AgentState, ws: Path) -> None:
    _write(ws, {"good.txt": "1\n2\n3\n", "bad.txt": "x\ny\nz\n"})
    before = _tree(ws)
    patch = """\
--- a/good.txt
+++ b/good.txt
@@ -1,3 +1,3 @@
 1
-2
+two
 3
--- /dev/null
+++ b/added.txt
@@ -0,0 +1 @@
+new
--- a/bad.txt
+++ b/bad.txt
@@ -1,3 +1,3 @@
 x
-Y
+why
 z
"""
    error = _reject(agent, patch)
    assert "/workspace/bad.txt: hunk 1: line 2" in error.message and "'Y'" in error.message
    assert error.hint
    assert _tree(ws) == before


def test_does_not_search_for_a_hunk_at_another_offset(agent: AgentState, ws: Path) -> None:
    _write(ws, {"numbers.txt": "line 0\n" + NUMBERS})
    error = _reject(agent, TWO_HUNKS)
    assert "hunk 1" in error.message
    assert (ws / "numbers.txt").read_text() == "line 0\n" + NUMBERS


def test_rejects_hunks_whose_lines_disagree_with_the_header_counts(agent: AgentState, ws: Path) -> None:
    _write(ws, {"f.txt": "a\nb\n"})
    error = _reject(agent, "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,2 @@\n a\n-b\n+c\n")
    assert "hunk 1" in error.message


def test_rejects_a_path_that_escapes_the_workspace(agent: AgentState, ws: Path, tmp_path: Path) -> None:
    _reject(agent, "--- /dev/null\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n", code="path_outside_workspace")
    (ws / "link").symlink_to(tmp_path)
    _reject(agent, "--- /dev/null\n+++ b/link/escape.txt\n@@ -0,0 +1 @@\n+x\n", code="path_outside_workspace")
    assert not (tmp_path / "escape.txt").exists()


def test_rejects_adding_a_file_that_already_exists(agent: AgentState, ws: Path) -> None:
    _write(ws, {"f.txt": "mine\n"})
    _reject(agent, "--- /dev/null\n+++ b/f.txt\n@@ -0,0 +1 @@\n+theirs\n")
    assert (ws / "f.txt").read_text() == "mine\n"


def test_rejects_binary_patches(agent: AgentState) -> None:
    patch = (
        "diff --git a/img.png b/img.png\nnew file mode 100644\nindex 0000000..1234567\nGIT binary patch\nliteral 3\n"
    )
    assert "binary" in _reject(agent, patch).message


def test_dry_run_reports_without_changing_anything(agent: AgentState, ws: Path) -> None:
    _write(ws, {"numbers.txt": NUMBERS})
    result = _apply(agent, TWO_HUNKS, dry_run=True)
    assert result["dry_run"] is True and result["files"] == [
        {"path": "/workspace/numbers.txt", "action": "modified", "hunks": 2}
    ]
    assert (ws / "numbers.txt").read_text() == NUMBERS


def test_honours_git_new_file_mode(agent: AgentState, ws: Path) -> None:
    patch = "diff --git a/run.sh b/run.sh\nnew file mode 100755\n--- /dev/null\n+++ b/run.sh\n@@ -0,0 +1 @@\n+echo\n"
    _apply(agent, patch)
    assert _tree(ws) == {"run.sh": (0o755, b"echo\n")}


def _edit(root: Path) -> None:
    """The same set of changes, made by hand, for diff and git to describe."""
    _write(root, {"numbers.txt": NUMBERS.replace("line 5\n", "five\n").replace("line 16\n", "")})
    _write(root, {"no_eol.txt": "first\nsecond"})
    _write(root, {"src/new.py": "print('new')\n"})
    (root / "gone.txt").unlink()
    shutil.rmtree(root / "olddir")
    (root / "tool.sh").chmod(0o755)
    (root / "moved").mkdir()
    (root / "rename_me.txt").rename(root / "moved" / "renamed.txt")


def _original(root: Path) -> None:
    _write(
        root,
        {
            "numbers.txt": NUMBERS,
            "no_eol.txt": "first\n",
            "gone.txt": "bye\n",
            "olddir/inner.txt": "inner\n",
            "tool.sh": "#!/bin/sh\n",
            "rename_me.txt": "".join(f"keep {n}\n" for n in range(30)),
        },
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_patch_from_git_diff_reproduces_the_edited_tree(agent: AgentState, ws: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _original(repo)
    _original(ws)
    env = {**os.environ, "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> str:
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        done = subprocess.run(["git", *identity, *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
        return done.stdout

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    _edit(repo)
    git("add", "-A")
    patch = git("diff", "--cached", "-M")
    assert "rename from" in patch and "new mode 100755" in patch

    _apply(agent, patch)
    assert _tree(ws) == _tree(repo)


@pytest.mark.skipif(shutil.which("diff") is None, reason="diff is not installed")
def test_a_patch_from_diff_ruN_reproduces_the_edited_tree(agent: AgentState, ws: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _original(tmp_path / name)
    _original(ws)
    _edit(tmp_path / "b")
    (ws / "tool.sh").chmod(0o755)  # diff does not carry modes
    # West of UTC, diff -N labels missing files 1969-12-31: the epoch must still be recognised.
    env = {**os.environ, "TZ": "XYZ+5"}
    done = subprocess.run(
        ["diff", "-ruN", "a", "b"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr

    result = _apply(agent, done.stdout)
    assert _tree(ws) == _tree(tmp_path / "b")
    files = result["files"]
    assert isinstance(files, list) and {"path": "/workspace/olddir/inner.txt", "action": "deleted", "hunks": 1} in files
