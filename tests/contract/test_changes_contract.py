"""Diff, export, snapshots and reset, through the SDK, on every backend.

Read-only checks share one workspace per backend, seeded from a real git
repository and then changed in every way a diff must report (an edit, a
binary file, absolute symlinks, a deletion, a chmod, a file turned into a
directory). Tests that change a workspace get their own.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_until
from roost import Roost, RoostError, Workspace
from roost.agent.snapshots.content import ContentStore
from roost.workspace.readiness import Readiness

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(shutil.which("git") is None, reason="the seed is a real git repository"),
]

TOOL_TIMEOUT = 30.0
README = "".join(f"line {i}\n" for i in range(1, 13))
# Run in /workspace: every kind of change a diff must report.
CHANGE_EVERYTHING = r"""
set -e
sed -i 's/^line 6$/line six/' README.md
printf '\000\001\002\377PNG' > logo.bin
ln -s /etc/passwd passwd-link
ln -s /etc etc-link
rm old.txt
chmod +x run.sh
rm becomes_dir && mkdir becomes_dir && echo inside > becomes_dir/inside.txt
"""
EXPECTED_CHANGES = {
    "README.md": "modified",
    "becomes_dir": "type_changed",
    "becomes_dir/inside.txt": "added",
    "etc-link": "added",
    "logo.bin": "added",
    "old.txt": "deleted",
    "passwd-link": "added",
    "run.sh": "mode_changed",
}
TEXT_ONLY = ["README.md", "old.txt", "run.sh", "passwd-link"]
# Absolute links never cross to the host: every export format leaves them out and lists them.
ABSOLUTE_LINKS = {"passwd-link": "/etc/passwd", "etc-link": "/etc"}

State = dict[str, tuple[object, ...]]


def git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C"}
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True, timeout=TOOL_TIMEOUT
    )
    return done.stdout


def make_git_seed(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    files = {
        "README.md": README,
        "src/app.py": "def main():\n    return 0\n",
        "old.txt": "to be deleted\n",
        "run.sh": "#!/bin/sh\necho run\n",
        "becomes_dir": "a file for now\n",
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
        (root / rel).chmod(0o644)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-qm", "seed")
    return root


def fresh_copy(seed: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", str(seed), str(dest)], check=True, timeout=TOOL_TIMEOUT)
    return dest


def exact_state(root: Path, *, skip_git: bool = True, exec_bit_only: bool = False) -> State:
    """Every path under `root`: kind, mode (files) and content or link target; never follows links.

    `exec_bit_only` for trees a patch tool wrote: git tracks no more of a mode, the rest is the umask's.
    """
    found: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip_git and ".git" in dirnames:
            dirnames.remove(".git")
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir",)
            else:
                mode = bool(st.st_mode & 0o111) if exec_bit_only else stat.S_IMODE(st.st_mode)
                found[rel] = ("file", mode, Path(full).read_bytes())
    return found


def workspace_state(ws: Workspace, scratch: Path, label: str) -> State:
    """The exact state of /workspace (.git included), read through an export plus the links it leaves out."""
    out = scratch / f"state-{label}"
    result = ws.export("/workspace", out)
    state = exact_state(out, skip_git=False)
    listed = ws.exec("find . -type l -printf '%P\\t%l\\n'")
    assert listed.exit_code == 0, listed.stderr
    links = dict(line.split("\t", 1) for line in listed.stdout.splitlines())
    assert {s.path for s in result.skipped} == {p for p, t in links.items() if t.startswith("/")}
    return state | {path: ("link", target) for path, target in links.items()}


def expect_error(code: str, call: object, *args: object, **kwargs: object) -> RoostError:
    assert callable(call)
    with pytest.raises(RoostError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value
    assert caught.value.hint
    return caught.value


def agent_dir(roost: Roost, ws: Workspace) -> Path:
    path = roost.home / "workspaces" / ws.id / "agent"
    assert path.is_dir(), "the agent's state dir lives beside the workspace on the host"
    return path


def blob_bytes(roost: Roost, ws: Workspace) -> int:
    """The bytes of distinct contents the workspace's snapshots hold, read as a fresh agent would."""
    return ContentStore(str(agent_dir(roost, ws) / "blobs")).content_bytes()


def blob_files(roost: Roost, ws: Workspace) -> dict[str, int]:
    """Every file of the content store with its size."""
    blobs = agent_dir(roost, ws) / "blobs"
    return {p.relative_to(blobs).as_posix(): p.stat().st_size for p in blobs.rglob("*") if p.is_file()}


# -- one changed workspace per backend, shared by the read-only tests ----------------


@dataclass(frozen=True)
class Changed:
    seed: Path
    ws: Workspace


class ChangedWorkspaces:
    """One seeded and changed workspace per backend, made on first use, deleted by `close`."""

    def __init__(self, base: Path, images: Path) -> None:
        self.base = base
        self.images = images
        self.made: dict[str, Changed] = {}
        self.clients: list[Roost] = []

    def get(self, backend: str) -> Changed:
        if backend not in self.made:
            home = self.base / backend / "home"
            home.mkdir(mode=0o700, parents=True)
            (home / "images").symlink_to(self.images, target_is_directory=True)
            client = Roost(home=home, backend=backend)
            self.clients.append(client)
            seed = make_git_seed(self.base / backend / "seed")
            ws = client.create_workspace("debian:12", seed_path=seed)
            self.made[backend] = Changed(seed, ws)
            done = ws.exec(CHANGE_EVERYTHING)
            assert done.exit_code == 0, done.stderr
        return self.made[backend]

    def close(self) -> None:
        for item in self.made.values():
            try:
                item.ws.delete(force=True)
            except RoostError:
                continue
        for client in self.clients:
            client.close()


@pytest.fixture(scope="module")
def changed_workspaces(tmp_path_factory: pytest.TempPathFactory, shared_images: Path) -> Iterator[ChangedWorkspaces]:
    pool = ChangedWorkspaces(tmp_path_factory.mktemp("changed"), shared_images)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def changed(backend: str, changed_workspaces: ChangedWorkspaces) -> Changed:
    return changed_workspaces.get(backend)


@pytest.fixture
def seeded(roost: Roost, tmp_path: Path) -> Workspace:
    """A workspace of its own, seeded from a fresh git repository (deleted by the `roost` fixture)."""
    return roost.create_workspace("debian:12", seed_path=make_git_seed(tmp_path / "seed"))


# -- diff ------------------------------------------------------------------------------


def test_diff_summarises_each_kind_of_change_with_sizes_modes_and_link_targets(changed: Changed) -> None:
    result = changed.ws.diff()

    by_path = {c.path: c for c in result.changes}
    assert {path: c.change for path, c in by_path.items()} == EXPECTED_CHANGES
    assert result.counts == {"modified": 1, "type_changed": 1, "added": 4, "deleted": 1, "mode_changed": 1}
    assert (result.against, result.truncated) == ("baseline", False)

    readme = by_path["README.md"]
    assert (readme.old_size, readme.new_size, readme.binary) == (len(README), len(README) + 2, False)
    logo = by_path["logo.bin"]
    assert (logo.kind, logo.old_size, logo.new_size, logo.binary) == ("file", None, 7, True)
    assert (by_path["old.txt"].old_size, by_path["old.txt"].new_size) == (len("to be deleted\n"), None)
    assert (by_path["run.sh"].old_mode, by_path["run.sh"].new_mode) == (0o644, 0o755)
    assert (by_path["becomes_dir"].kind, by_path["becomes_dir"].old_size) == ("dir", len("a file for now\n"))
    for link, target in (("passwd-link", "/etc/passwd"), ("etc-link", "/etc")):
        entry = by_path[link]
        assert (entry.kind, entry.old_target, entry.new_target, entry.binary) == ("symlink", None, target, False)
    assert not [c.path for c in result.changes if c.path.startswith(("etc-link/", ".git"))]


def test_diff_text_has_hunks_modes_binary_literals_and_links_as_their_target(changed: Changed) -> None:
    patch = changed.ws.diff().patch

    assert "--- a/README.md\n+++ b/README.md\n@@ -3,7 +3,7 @@\n line 3\n line 4\n line 5\n-line 6\n+line six\n" in patch
    assert "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n" in patch
    assert "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n" in patch
    assert "diff --git a/logo.bin b/logo.bin\nnew file mode 100644\nindex " in patch
    assert "GIT binary patch\nliteral 7\n" in patch
    assert "new file mode 120000\n--- /dev/null\n+++ b/passwd-link\n@@ -0,0 +1 @@\n+/etc/passwd\n" in patch
    assert "+inside\n" in patch
    assert "root:" not in patch, "a link's diff is its target, never what it points at"


def test_diff_stat_gives_the_summary_without_patch_text(changed: Changed) -> None:
    result = changed.ws.diff(stat=True)
    assert result.patch == ""
    assert {c.path: c.change for c in result.changes} == EXPECTED_CHANGES


def test_diff_path_filter_keeps_only_changes_under_the_given_paths(changed: Changed) -> None:
    result = changed.ws.diff(paths=["becomes_dir", "/workspace/run.sh"])

    assert [c.path for c in result.changes] == ["becomes_dir", "becomes_dir/inside.txt", "run.sh"]
    assert "README.md" not in result.patch and "logo.bin" not in result.patch
    assert changed.ws.diff(paths=["src"]).changes == ()


def test_a_tiny_max_bytes_cuts_the_patch_with_a_marker_but_keeps_the_whole_summary(changed: Changed) -> None:
    result = changed.ws.diff(max_bytes=64)

    assert result.truncated is True
    assert len(result.changes) == len(EXPECTED_CHANGES)
    head, marker = result.patch.split("\n[... diff cut at 64 bytes: ", 1)
    assert len(head) < 64 + 100
    assert "narrow it with --path" in marker


def test_diff_against_an_unknown_snapshot_is_snapshot_not_found(changed: Changed) -> None:
    expect_error("snapshot_not_found", changed.ws.diff, against="never-made")


def test_diff_of_a_path_outside_the_workspace_is_refused(changed: Changed) -> None:
    expect_error("path_outside_workspace", changed.ws.diff, paths=["/etc"])


# -- export --------------------------------------------------------------------------


def test_the_exported_patch_makes_a_fresh_copy_of_the_seed_equal_to_the_workspace(
    changed: Changed, tmp_path: Path
) -> None:
    exported = changed.ws.export("/workspace", tmp_path / "changes.patch", format="patch")
    assert (exported.format, exported.files) == ("patch", len(EXPECTED_CHANGES) - len(ABSOLUTE_LINKS))
    assert exported.bytes == (tmp_path / "changes.patch").stat().st_size
    assert {s.path: s.reason for s in exported.skipped} == dict.fromkeys(ABSOLUTE_LINKS, "absolute_symlink")

    copy = fresh_copy(changed.seed, tmp_path / "copy")
    subprocess.run(
        ["git", "apply", "--whitespace=nowarn", str(tmp_path / "changes.patch")],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=TOOL_TIMEOUT,
    )

    changed.ws.export("/workspace", tmp_path / "now")
    assert exact_state(copy, exec_bit_only=True) == exact_state(tmp_path / "now", exec_bit_only=True)
    assert not os.path.lexists(copy / "passwd-link"), "the patch carried no absolute link"
    assert (copy / "run.sh").stat().st_mode & 0o111


def test_a_text_only_patch_applies_with_gnu_patch(changed: Changed, tmp_path: Path) -> None:
    patch = changed.ws.diff(paths=TEXT_ONLY, max_bytes=None).patch
    copy = fresh_copy(changed.seed, tmp_path / "copy")

    subprocess.run(
        ["patch", "-p1", "--batch", "--silent"], cwd=copy, input=patch, text=True, check=True, timeout=TOOL_TIMEOUT
    )

    changed.ws.export("/workspace", tmp_path / "now")
    now = exact_state(tmp_path / "now", exec_bit_only=True)
    expected = {p: v for p, v in now.items() if p.split("/")[0] in {*TEXT_ONLY, "src"}}
    expected["becomes_dir"] = ("file", False, b"a file for now\n")  # left out of the patch: still the seed's
    expected["passwd-link"] = ("link", "/etc/passwd")  # in the diff text, though no export carries it
    assert exact_state(copy, exec_bit_only=True) == expected


def test_export_writes_a_single_file(changed: Changed, tmp_path: Path) -> None:
    result = changed.ws.export("README.md", tmp_path / "README.out")
    assert (result.files, result.bytes) == (1, len(README) + 2)
    assert (tmp_path / "README.out").read_text() == README.replace("line 6\n", "line six\n")


def test_export_writes_a_directory_tree_with_modes_leaving_absolute_links_out(changed: Changed, tmp_path: Path) -> None:
    out = tmp_path / "tree"
    result = changed.ws.export("/workspace", out)

    assert result.format == "dir" and out.is_dir()
    assert not os.path.lexists(out / "passwd-link") and not os.path.lexists(out / "etc-link")
    assert {s.path: s.reason for s in result.skipped} == dict.fromkeys(ABSOLUTE_LINKS, "absolute_symlink")
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert (out / "logo.bin").read_bytes() == b"\0\1\2\377PNG"
    assert (out / "becomes_dir" / "inside.txt").read_text() == "inside\n"
    assert git(out, "log", "--format=%s") == "seed\n", "the seeded .git came along intact"


def test_export_of_a_directory_holding_one_file_is_still_a_directory(changed: Changed, tmp_path: Path) -> None:
    changed.ws.export("becomes_dir", tmp_path / "one")
    assert sorted(os.listdir(tmp_path / "one")) == ["inside.txt"]


def test_export_of_a_lone_absolute_link_is_refused_and_writes_nothing(changed: Changed, tmp_path: Path) -> None:
    expect_error("export_skipped", changed.ws.export, "etc-link", tmp_path / "link")
    assert os.listdir(tmp_path) == []


def test_export_as_tar_holds_every_member_with_safe_relative_names(changed: Changed, tmp_path: Path) -> None:
    result = changed.ws.export("/workspace", tmp_path / "ws.tar", format="tar")

    with tarfile.open(tmp_path / "ws.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert result.format == "tar"
    visible = {name for name in members if not name.startswith(".git/")}
    assert visible == {*EXPECTED_CHANGES, ".git", "src", "src/app.py"} - {"old.txt", *ABSOLUTE_LINKS}
    assert not [n for n in members if n.startswith("/") or ".." in n.split("/")]
    assert {s.path for s in result.skipped} == set(ABSOLUTE_LINKS)
    assert members["run.sh"].mode & 0o777 == 0o755


def test_export_of_a_path_outside_the_workspace_is_refused(changed: Changed, tmp_path: Path) -> None:
    for path in ("/etc/passwd", "../escape", "etc-link/passwd"):
        expect_error("path_outside_workspace", changed.ws.export, path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_never_writes_over_an_existing_output(changed: Changed, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("mine\n")
    for fmt in ("dir", "tar", "patch"):
        expect_error("output_exists", changed.ws.export, "README.md", tmp_path / "taken", format=fmt)
    assert (tmp_path / "taken").read_text() == "mine\n"
    assert sorted(os.listdir(tmp_path)) == ["taken"], "no staging directory left behind"


# -- ignore rules: a checkout with build output, dependencies and its own .git ---------------

# Run in /workspace: edit tracked sources, and change what git ignores and .git itself,
# the way a build, `npm install` and `git add` would.
WORK_ON_A_CHECKOUT = r"""
set -e
sed -i 's/return 0/return 1/' src/main.c
printf 'int util(void);\n' > src/util.c
printf 'rebuilt' > build/app
printf 'more' >> debug.log
mkdir -p node_modules/new && echo 'module.exports = 2' > node_modules/new/index.js
printf 'x' > src/main.o
printf 'staged' >> .git/index
echo 0000000000000000000000000000000000000000 > .git/refs/heads/wip
"""


def make_checkout_with_ignored_output(root: Path) -> Path:
    """A git checkout as a developer has it: tracked sources and .gitignore files, and ignored output."""
    tracked = {
        ".gitignore": "build/\nnode_modules/\n*.log\n",
        "src/.gitignore": "*.o\n!keep.o\n",
        "src/main.c": "int main(void) { return 0; }\n",
        "src/keep.o": "tracked despite *.o\n",
    }
    ignored = {"build/app": "built", "node_modules/dep/index.js": "module.exports = 1\n", "debug.log": "log\n"}
    for rel, text in tracked.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-qm", "seed")
    for rel, text in ignored.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    assert git(root, "status", "--porcelain") == "", "the output is ignored, the checkout clean"
    return root


@pytest.fixture
def checkout(roost: Roost, tmp_path: Path) -> Changed:
    seed = make_checkout_with_ignored_output(tmp_path / "checkout")
    ws = roost.create_workspace("debian:12", seed_path=seed)
    done = ws.exec(WORK_ON_A_CHECKOUT)
    assert done.exit_code == 0, done.stderr
    return Changed(seed, ws)


def git_apply(checkout: Path, patch: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "apply", *options, str(patch)], cwd=checkout, capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )


def test_an_exported_patch_of_a_checkout_applies_to_the_hosts_checkout(checkout: Changed, tmp_path: Path) -> None:
    ws, seed = checkout.ws, checkout.seed
    with_git = ws.export("/workspace", tmp_path / "with-git.patch", format="patch", include_git_dir=True)
    assert with_git.files > 0
    refused = git_apply(seed, tmp_path / "with-git.patch", "--check")
    assert refused.returncode != 0 and "invalid path '.git/" in refused.stderr, "what a patch with .git does"

    plain = ws.export("/workspace", tmp_path / "plain.patch", format="patch")
    kept = ws.export("/workspace", tmp_path / "kept.patch", format="patch", gitignore=True)

    assert ".git/" not in (tmp_path / "plain.patch").read_text(), ".git is left out of a patch by default"
    assert plain.files == with_git.files - 2, "all but .git/index and .git/refs/heads/wip"
    assert git_apply(seed, tmp_path / "plain.patch", "--check").returncode == 0
    assert git_apply(seed, tmp_path / "kept.patch", "--check").returncode == 0
    assert kept.files == 2 and "b/src/util.c" in (tmp_path / "kept.patch").read_text()
    copy = fresh_copy(seed, tmp_path / "copy")
    assert git_apply(copy, tmp_path / "kept.patch").returncode == 0
    assert (copy / "src" / "main.c").read_text() == "int main(void) { return 1; }\n"
    assert (copy / "src" / "util.c").read_text() == "int util(void);\n"
    assert (copy / "build" / "app").read_text() == "built", "ignored output is not in the patch"
    assert git(copy, "status", "--porcelain") == " M src/main.c\n?? src/util.c\n"


def test_exclude_and_gitignore_leave_the_same_paths_out_of_a_diff_and_a_dir_export(
    checkout: Changed, tmp_path: Path
) -> None:
    ws = checkout.ws
    everything = {c.path for c in ws.diff(stat=True).changes}
    assert {".git/index", "build/app", "debug.log", "node_modules/new/index.js", "src/main.o"} <= everything

    excluded = {c.path for c in ws.diff(stat=True, exclude=["node_modules/", "/build", "*.log"]).changes}
    ignored = {c.path for c in ws.diff(stat=True, gitignore=True).changes}
    taken_back = {c.path for c in ws.diff(stat=True, gitignore=True, exclude=["!src/*.o"]).changes}

    assert excluded == everything - {"build/app", "debug.log", "node_modules/new", "node_modules/new/index.js"}
    assert ignored == {"src/main.c", "src/util.c"}
    assert taken_back == {"src/main.c", "src/main.o", "src/util.c"}
    ws.export("/workspace", tmp_path / "tree", gitignore=True)
    assert sorted(str(p.relative_to(tmp_path / "tree")) for p in (tmp_path / "tree").rglob("*")) == [
        ".gitignore", "src", "src/.gitignore", "src/keep.o", "src/main.c", "src/util.c",
    ]  # fmt: skip
    expect_error("path_excluded", ws.export, "node_modules/dep", tmp_path / "dep", gitignore=True)
    expect_error("invalid_argument", ws.diff, exclude=["[unclosed"])


# Run in /workspace: sources enough for several pages and a patch of many records, and as
# much again in an ignored node_modules.
GENERATE_SOURCES = r"""
set -e
for i in $(seq -w 1 30); do
    seq 1 1200 > src/gen$i.c
    seq 1 1200 > node_modules/new/gen$i.js
done
"""


def test_ignore_rules_hold_on_every_page_of_a_diff_in_its_streams_and_in_a_streamed_patch_export(
    checkout: Changed, tmp_path: Path
) -> None:
    ws, seed = checkout.ws, checkout.seed
    done = ws.exec(GENERATE_SOURCES)
    assert done.exit_code == 0, done.stderr
    rules: dict[str, Any] = {"gitignore": True, "exclude": ["src/gen0*"]}
    kept = ["src/main.c", *(f"src/gen{i}.c" for i in range(10, 31)), "src/util.c"]
    whole = ws.diff(max_bytes=None, **rules)
    assert sorted(c.path for c in whole.changes) == sorted(kept) and whole.counts == {"added": 22, "modified": 1}

    paths: list[str] = []
    patch = ""
    cursor = None
    pages = 0
    while pages <= len(kept):  # pages end; each holds at least one change
        page = ws.diff(max_bytes=16384, limit=5, cursor=cursor, **rules)
        assert page.counts == whole.counts, "every page counts the same filtered diff"
        paths += [c.path for c in page.changes]
        patch += page.patch
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert paths == [c.path for c in whole.changes] and patch == whole.patch
    assert pages >= len(kept) // 5 + 1 and not page.truncated, "the entry limit and the patch budget end pages"

    with ws.diff_entries(**rules) as entries:
        assert [c.path for c in entries] == paths
    with ws.diff_stream(**rules) as parts:
        assert "".join(p for p in parts if isinstance(p, str)) == whole.patch

    result = ws.export("/workspace", tmp_path / "src.patch", format="patch", **rules)
    text = (tmp_path / "src.patch").read_text()
    assert len(text) > 64 * 1024, "the patch crossed in many records"
    assert (result.files, result.skipped) == (len(kept), ())
    assert text.count("diff --git ") == len(kept) and "node_modules" not in text and "gen01" not in text
    assert git_apply(seed, tmp_path / "src.patch", "--check").returncode == 0


def test_an_exported_patch_judges_a_link_retarget_by_its_text(roost: Roost, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    for name in ("notes.txt", "other.txt"):
        (seed / name).write_text(f"{name}\n")
    os.symlink("notes.txt", seed / "stays-inside")
    os.symlink("notes.txt", seed / "leaves")
    ws = roost.create_workspace("debian:12", seed_path=seed)
    done = ws.exec("ln -sfn other.txt stays-inside && ln -sfn /etc/passwd leaves")
    assert done.exit_code == 0, done.stderr

    result = ws.export("/workspace", tmp_path / "links.patch", format="patch")

    text = (tmp_path / "links.patch").read_text()
    assert [(s.path, s.reason) for s in result.skipped] == [("leaves", "absolute_symlink")]
    assert "/etc/passwd" not in text and "diff --git a/leaves" not in text
    assert "diff --git a/stays-inside b/stays-inside\nindex " in text and " 120000\n" in text
    copy = fresh_copy(seed, tmp_path / "copy")
    assert git_apply(copy, tmp_path / "links.patch").returncode == 0
    assert (os.readlink(copy / "stays-inside"), os.readlink(copy / "leaves")) == ("other.txt", "notes.txt")


# -- snapshots: names --------------------------------------------------------------------


def test_snapshot_names_are_checked_and_never_reused(changed: Changed) -> None:
    for name in ("", "../up", "a/b", ".hidden", "x" * 64):
        expect_error("invalid_argument", changed.ws.snapshots.create, name)
    expect_error("snapshot_exists", changed.ws.snapshots.create, "baseline")
    changed.ws.snapshots.create("checkpoint")
    expect_error("snapshot_exists", changed.ws.snapshots.create, "checkpoint")
    changed.ws.snapshots.delete("checkpoint")
    expect_error("snapshot_not_found", changed.ws.snapshots.delete, "checkpoint")
    expect_error("snapshot_not_found", changed.ws.reset, snapshot="never-made")
    expect_error("invalid_argument", changed.ws.snapshots.delete, "baseline")

    assert [s.name for s in changed.ws.snapshots.list()] == ["baseline"]
    assert {c.path: c.change for c in changed.ws.diff(stat=True).changes} == EXPECTED_CHANGES, "nothing was reset"


# -- snapshots and reset ------------------------------------------------------------------


def test_reset_to_a_snapshot_then_to_the_baseline_restores_each_exactly(seeded: Workspace, tmp_path: Path) -> None:
    at_create = workspace_state(seeded, tmp_path, "create")
    assert seeded.exec(CHANGE_EVERYTHING).exit_code == 0
    snap = seeded.snapshots.create("changed")
    assert snap.stored_bytes == 7 + len(README) + 2 + len("inside\n")
    changed = workspace_state(seeded, tmp_path, "changed")

    later = seeded.exec(
        "echo scribble >> README.md && rm run.sh && echo new > new.txt && chmod 600 src/app.py && "
        "ln -sfn /etc/hostname passwd-link && mkdir -p extra/deeper && echo x > extra/deeper/x && "
        "rm -r becomes_dir && echo back > becomes_dir"
    )
    assert later.exit_code == 0, later.stderr

    to_snapshot = seeded.reset(snapshot="changed")
    assert to_snapshot.snapshot == "changed" and to_snapshot.removed >= 3
    assert workspace_state(seeded, tmp_path, "reset-snapshot") == changed
    assert seeded.diff(against="changed").changes == ()

    to_baseline = seeded.reset()
    assert to_baseline.snapshot == "baseline"
    assert workspace_state(seeded, tmp_path, "reset-baseline") == at_create
    assert seeded.diff().changes == ()


def test_a_reset_to_a_missing_snapshot_stops_nothing(seeded: Workspace) -> None:
    seeded.services.start("ticker", "while true; do sleep 0.05; done", ready=Readiness(command="true"))
    shell = seeded.shells.open()
    with pytest.raises(RoostError) as caught:
        seeded.reset(snapshot="never-taken")
    assert caught.value.code == "snapshot_not_found"
    assert seeded.services.status("ticker").state == "ready"
    assert [s.state for s in seeded.shells.list()] == ["running"] and seeded.shells.list()[0].id == shell.id


def test_reset_stops_services_and_closes_shells_first_and_says_which(roost: Roost, seeded: Workspace) -> None:
    seeded.exec("echo scratch > scratch.txt")
    service = seeded.services.start(
        "ticker", "while true; do echo tick; sleep 0.05; done", ready=Readiness(command="true")
    )
    assert service.state == "ready"
    shell = seeded.shells.open()
    wait_until(lambda: "tick" in seeded.services.logs("ticker"), what="the service to log")

    # Service logs and agent state live outside /workspace: no diff, no snapshot holds them.
    assert [c.path for c in seeded.diff().changes] == ["scratch.txt"]
    seeded.snapshots.create("with-service")
    listing = seeded.files.list("/workspace", recursive=True)
    in_workspace = {e.path.removeprefix("/workspace/") for e in listing.entries}
    manifests = sorted((agent_dir(roost, seeded) / "snapshots").glob("*.json"))
    assert [m.stem for m in manifests] == ["baseline", "with-service"]
    assert {row[0] for row in json.loads(manifests[1].read_text())["entries"]} == in_workspace

    result = seeded.reset()

    assert result.stopped_services == ("ticker",)
    assert result.closed_shells == (shell.id,)
    assert seeded.services.status("ticker").state == "stopped"
    assert [s.state for s in seeded.shells.list()] == ["closed"]
    assert seeded.diff().changes == (), "nothing the shell or service left behind survives the reset"


def test_a_second_snapshot_of_an_unchanged_workspace_stores_nothing_new(roost: Roost, seeded: Workspace) -> None:
    stored_at_create = blob_bytes(roost, seeded)
    files_at_create = blob_files(roost, seeded)
    assert stored_at_create > 0

    first = seeded.snapshots.create("first")
    second = seeded.snapshots.create("second")

    assert (first.stored_bytes, second.stored_bytes) == (0, 0)
    assert first.files == second.files and first.size_bytes == second.size_bytes > 0
    assert blob_bytes(roost, seeded) == stored_at_create
    assert blob_files(roost, seeded) == files_at_create  # their manifests are all they cost

    seeded.files.write("big.bin", b"\1" * 100_000)
    third = seeded.snapshots.create("third")
    assert third.stored_bytes == 100_000
    assert blob_bytes(roost, seeded) == stored_at_create + 100_000

    seeded.snapshots.delete("third")
    assert blob_bytes(roost, seeded) == stored_at_create
    assert [s.name for s in seeded.snapshots.list()] == ["baseline", "first", "second"]


# -- sync push --delete -----------------------------------------------------------------


def test_sync_push_delete_mirrors_a_host_dir_and_the_diff_reflects_it(seeded: Workspace, tmp_path: Path) -> None:
    mirror = fresh_copy(tmp_path / "seed", tmp_path / "mirror")  # the seed `seeded` was made from
    shutil.rmtree(mirror / ".git")
    (mirror / "old.txt").unlink()
    (mirror / "src" / "app.py").write_text("def main():\n    return 1\n")
    (mirror / "added.txt").write_text("added\n")
    seeded.files.write("stray.txt", "not on the host\n")

    result = seeded.sync_push(mirror, delete=True)

    assert result.deleted >= 3  # old.txt, stray.txt and the whole .git
    assert exact_state(mirror) == workspace_state(seeded, tmp_path, "mirrored")
    changes = {c.path: c.change for c in seeded.diff(stat=True).changes}
    assert changes["old.txt"] == "deleted" and changes["added.txt"] == "added"
    assert changes["src/app.py"] == "modified" and changes[".git"] == "deleted"
    assert "stray.txt" not in changes
