"""`roost workspace diff|export|snapshot|reset` and `sync push --delete` as a user runs them.

The read-only flows share one workspace, seeded from a real git repository
and then changed; the flows that change a workspace get their own.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("git") is None, reason="the seed is a real git repository"),
]

TOOL_TIMEOUT = 30.0
STAT_ROW = re.compile(r"^(?P<change>\S+)\s+(?P<kind>\S+)\s+(?P<size>-|\S+ \S+)\s+(?P<path>\S+)\s*(?P<note>.*?)\s*$")
CHANGE_EVERYTHING = r"""
set -e
sed -i 's/^world$/there/' hello.txt
printf '\000\001\002\377PNG' > logo.bin
ln -s /etc/passwd passwd-link
rm old.txt
chmod +x run.sh
"""


def make_git_seed(root: Path) -> Path:
    root.mkdir(parents=True)
    for rel, text in {"hello.txt": "hello\nworld\n", "old.txt": "old\n", "run.sh": "#!/bin/sh\necho run\n"}.items():
        (root / rel).write_text(text)
        (root / rel).chmod(0o644)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=s", "-c", "user.email=s@x", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, timeout=TOOL_TIMEOUT)
    return root


def tree_of(root: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames:
            dirnames.remove(".git")
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                # The exec bit is all of a mode git keeps; the rest is the umask's.
                found[rel] = ("file", bool(st.st_mode & 0o111), Path(full).read_bytes())
            else:
                found[rel] = ("dir",)
    return found


@dataclass(frozen=True)
class Changed:
    id: str
    seed: Path


@pytest.fixture(scope="module")
def changed(module_roost: RoostCli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Changed]:
    seed = make_git_seed(tmp_path_factory.mktemp("git-seed") / "repo")
    ws_id = module_roost.create("--seed-path", str(seed))
    module_roost("workspace", "exec", ws_id, "-c", CHANGE_EVERYTHING, check_rc=0)
    yield Changed(ws_id, seed)
    module_roost("workspace", "delete", ws_id, "--force")


def test_diff_prints_a_patch_and_stat_prints_a_table_with_totals(module_roost: RoostCli, changed: Changed) -> None:
    patch = module_roost("workspace", "diff", changed.id, check_rc=0).stdout
    assert "--- a/hello.txt\n+++ b/hello.txt\n@@ -1,2 +1,2 @@\n hello\n-world\n+there\n" in patch
    assert "GIT binary patch" in patch and "+/etc/passwd" in patch
    assert "old mode 100644\nnew mode 100755\n" in patch

    table = module_roost("workspace", "diff", changed.id, "--stat", check_rc=0).stdout.splitlines()
    assert table[0].split() == ["CHANGE", "KIND", "SIZE", "PATH"]
    rows = {m["path"]: m.groupdict() for m in map(STAT_ROW.match, table[1:-1]) if m}
    assert sorted(rows) == ["hello.txt", "logo.bin", "old.txt", "passwd-link", "run.sh"]
    assert (rows["hello.txt"]["change"], rows["hello.txt"]["size"]) == ("modified", "12 B")
    assert (rows["logo.bin"]["change"], rows["logo.bin"]["note"]) == ("added", "binary")
    assert (rows["passwd-link"]["kind"], rows["passwd-link"]["note"]) == ("symlink", "-> /etc/passwd")
    assert (rows["old.txt"]["change"], rows["old.txt"]["size"]) == ("deleted", "-")
    assert rows["run.sh"]["change"] == "mode_changed"
    assert table[-1] == "2 added, 1 deleted, 1 mode_changed, 1 modified"


def test_diff_path_filter_and_json_document(module_roost: RoostCli, changed: Changed) -> None:
    only = module_roost("workspace", "diff", changed.id, "--path", "hello.txt", "--path", "/workspace/run.sh")
    assert only.returncode == 0
    assert only.stdout.count("diff --git") == 2 and "logo.bin" not in only.stdout

    document = module_roost.json("workspace", "diff", changed.id, "--stat")
    assert document["against"] == "baseline" and document["patch"] == ""
    assert {c["path"]: c["change"] for c in document["changes"]} == {
        "hello.txt": "modified",
        "logo.bin": "added",
        "old.txt": "deleted",
        "passwd-link": "added",
        "run.sh": "mode_changed",
    }


def test_diff_stat_and_export_leave_out_what_exclude_patterns_match(
    module_roost: RoostCli, changed: Changed, tmp_path: Path
) -> None:
    rules = ["--exclude", "*.bin", "--exclude", "/workspace/old.txt"]
    table = module_roost("workspace", "diff", changed.id, "--stat", *rules, check_rc=0).stdout.splitlines()
    rows = {m["path"]: m["change"] for m in map(STAT_ROW.match, table[1:-1]) if m}
    assert rows == {"hello.txt": "modified", "passwd-link": "added", "run.sh": "mode_changed"}
    assert table[-1] == "1 added, 1 mode_changed, 1 modified"

    document = module_roost.json("workspace", "diff", changed.id, "--stat", "--exclude", "*.txt", "--gitignore")
    assert sorted(c["path"] for c in document["changes"]) == ["logo.bin", "passwd-link", "run.sh"]

    out = tmp_path / "tree"
    module_roost("workspace", "export", changed.id, "/workspace", "-o", str(out), *rules, check_rc=0)
    assert sorted(os.listdir(out)) == [".git", "hello.txt", "run.sh"]
    module_roost("workspace", "export", changed.id, ".", "-o", str(tmp_path / "t2"), "--gitignore", check_rc=0)
    assert ".git" not in os.listdir(tmp_path / "t2")

    bad = module_roost("workspace", "diff", changed.id, "--exclude", "[oops", "--json")
    assert "can never match" in module_roost.error(bad, 2, "invalid_argument")["message"]


def test_a_capped_diff_ends_with_a_marker_and_warns_on_stderr(module_roost: RoostCli, changed: Changed) -> None:
    proc = module_roost("workspace", "diff", changed.id, "--max-bytes", "40", check_rc=0)
    assert "[... diff cut at 40 bytes:" in proc.stdout
    assert "the diff was cut" in proc.stderr


def test_export_patch_applies_with_git_apply_to_a_copy_of_the_seed(
    module_roost: RoostCli, changed: Changed, tmp_path: Path
) -> None:
    out = tmp_path / "changes.patch"
    proc = module_roost("workspace", "export", changed.id, "/workspace", "-o", str(out), "--format", "patch")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"exported /workspace as patch to {out} (4 files,")
    assert "skipped 1 entries that may not cross to the host:" in proc.stdout
    assert "passwd-link  a symlink to '/etc/passwd', which leads out of the tree" in proc.stdout

    copy = tmp_path / "copy"
    shutil.copytree(changed.seed, copy, symlinks=True)
    subprocess.run(["git", "apply", str(out)], cwd=copy, check=True, capture_output=True, timeout=TOOL_TIMEOUT)
    module_roost("workspace", "export", changed.id, "/workspace", "-o", str(tmp_path / "now"), check_rc=0)
    assert tree_of(copy) == tree_of(tmp_path / "now")


def test_export_refuses_an_existing_output_and_a_path_outside_the_workspace(
    module_roost: RoostCli, changed: Changed, tmp_path: Path
) -> None:
    (tmp_path / "taken").write_text("mine\n")
    exists = module_roost("workspace", "export", changed.id, "hello.txt", "-o", str(tmp_path / "taken"), "--json")
    module_roost.error(exists, 4, "output_exists")
    assert (tmp_path / "taken").read_text() == "mine\n"

    outside = module_roost("workspace", "export", changed.id, "/etc/passwd", "-o", str(tmp_path / "x"), "--json")
    module_roost.error(outside, 2, "path_outside_workspace")
    assert not (tmp_path / "x").exists()


def test_snapshot_create_list_delete_and_their_errors(module_roost: RoostCli, changed: Changed) -> None:
    created = module_roost("workspace", "snapshot", "create", changed.id, "cli-snap", check_rc=0).stdout
    assert created.startswith("snapshot cli-snap: ")
    assert created.rstrip().endswith("(19 B newly stored)"), "only the changed content is new: 12 + 7 bytes"

    listing = module_roost("workspace", "snapshot", "list", changed.id, check_rc=0).stdout.splitlines()
    assert listing[0].split()[:2] == ["SNAPSHOT", "CREATED"]
    assert [line.split()[0] for line in listing[1:]] == ["baseline", "cli-snap"]

    for args, exit_code, code in (
        (["snapshot", "create", changed.id, "cli-snap"], 4, "snapshot_exists"),
        (["snapshot", "create", changed.id, "../bad"], 2, "invalid_argument"),
        (["snapshot", "delete", changed.id, "baseline"], 2, "invalid_argument"),
        (["reset", changed.id, "--snapshot", "never-made"], 3, "snapshot_not_found"),
    ):
        module_roost.error(module_roost("workspace", *args, "--json"), exit_code, code)

    deleted = module_roost("workspace", "snapshot", "delete", changed.id, "cli-snap", check_rc=0)
    assert deleted.stdout == "deleted snapshot cli-snap\n"


def test_reset_says_which_services_it_stopped_and_shells_it_closed(roost: RoostCli) -> None:
    ws_id = roost.create()
    roost("workspace", "service", "start", ws_id, "ticker", "--ready-command", "true", "-c", "sleep 600", check_rc=0)
    shell_id = roost("workspace", "shell", "open", ws_id, "--id-only", check_rc=0).stdout.strip()

    proc = roost("workspace", "reset", ws_id, check_rc=0)

    lines = proc.stdout.splitlines()
    assert lines[:2] == ["stopped services: ticker", f"closed shells: {shell_id}"]
    # On mock the closed bash leaves its history behind (its HOME is the workspace); reset removes it.
    assert re.fullmatch(r"reset to baseline: 0 restored, [01] removed", lines[2]), lines
    assert len(lines) == 3
    assert roost("workspace", "diff", ws_id, check_rc=0).stdout == "no changes since baseline\n"


def test_sync_push_delete_mirrors_a_host_dir_and_diff_shows_it(roost: RoostCli, tmp_path: Path) -> None:
    seed = make_git_seed(tmp_path / "seed")
    ws_id = roost.create("--seed-path", str(seed))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "hello.txt").write_text("hello\nmirror\n")
    (mirror / "new.txt").write_text("new\n")

    pushed = roost.json("workspace", "sync", "push", ws_id, str(mirror), "--delete")

    assert pushed["deleted"] >= 3  # old.txt, run.sh and .git
    changes = {c["path"]: c["change"] for c in roost.json("workspace", "diff", ws_id, "--stat")["changes"]}
    assert changes["hello.txt"] == "modified" and changes["new.txt"] == "added"
    assert changes["old.txt"] == changes["run.sh"] == changes[".git"] == "deleted"
