"""Snapshots of a workspace root (create, list, delete, reset) and the diff op, on real directories.

The ops are called directly with an in-memory request, as the agent's
server would call them.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_until
from roost.agent.context import RequestContext
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.snapshots.content import ContentStore
from roost.agent.snapshots.named import Snapshots, compare
from roost.agent.snapshots.trees import DIR, FILE, SYMLINK, Entry
from roost.agent.state import AgentState
from roost.protocol import Code, Op, OpError
from roost.protocol.ops.snapshots import BASELINE
from roost.protocol.ops.snapshots import check_snapshot_name as check_name
from roost.protocol.records import decode_records

State = dict[str, tuple[str, int, bytes | str | None]]


def exact_state(root: Path) -> State:
    """Every path under `root` with its kind, permission bits and content or link target."""
    found: State = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", 0, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", mode, None)
            else:
                found[rel] = ("file", mode, Path(full).read_bytes())
    return found


def blob_bytes(state_dir: Path) -> int:
    """The content bytes the store under `state_dir` holds, as a fresh agent would find them."""
    return ContentStore(str(state_dir / "blobs")).content_bytes()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / "README").write_text("one\ntwo\nthree\n")
    (root / "data.bin").write_bytes(bytes(range(256)))
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    for path, mode in (("src/app.py", 0o644), ("README", 0o644), ("data.bin", 0o600), ("run.sh", 0o755)):
        (root / path).chmod(mode)
    os.symlink("README", root / "readme-link")
    return root


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(root: Path, state_dir: Path) -> Snapshots:
    store = Snapshots(str(state_dir), WorkspacePaths(str(root)))
    store.create(BASELINE)
    return store


def _mutate(root: Path) -> None:
    (root / "README").write_text("one\nTWO\nthree\n")
    (root / "data.bin").unlink()
    (root / "added.txt").write_text("added\n")
    (root / "run.sh").chmod(0o644)
    (root / "src").chmod(0o700)
    os.unlink(root / "readme-link")
    os.symlink("/etc/passwd", root / "readme-link")
    (root / "src" / "app.py").unlink()
    (root / "src" / "app.py").mkdir()
    (root / "src" / "app.py" / "deep.txt").write_text("deep\n")


def _entry(
    path: str, kind: str = FILE, mode: int = 0o644, digest: str | None = "d1", target: str | None = None
) -> Entry:
    return Entry(path, kind, mode, 3 if kind == FILE else 0, digest if kind == FILE else None, target)


# -- compare -------------------------------------------------------------------


def test_compare_classifies_each_kind_of_change() -> None:
    old = {
        "same": _entry("same"),
        "edited": _entry("edited", digest="d1"),
        "gone": _entry("gone"),
        "chmod": _entry("chmod", mode=0o644),
        "retyped": _entry("retyped"),
        "relinked": _entry("relinked", SYMLINK, 0o777, target="a"),
    }
    new = {
        "same": _entry("same"),
        "edited": _entry("edited", digest="d2"),
        "chmod": _entry("chmod", mode=0o755),
        "retyped": _entry("retyped", DIR, 0o755),
        "relinked": _entry("relinked", SYMLINK, 0o777, target="b"),
        "fresh": _entry("fresh"),
    }

    changes = {c.path: c.change for c in compare(old, new)}

    assert changes == {
        "edited": "modified",
        "gone": "deleted",
        "chmod": "mode_changed",
        "retyped": "type_changed",
        "relinked": "modified",
        "fresh": "added",
    }
    assert [c.path for c in compare(old, new)] == sorted(changes)


def test_compare_ignores_a_links_own_mode_and_a_content_change_outranks_a_mode_change() -> None:
    old = {"link": _entry("link", SYMLINK, 0o777, target="t"), "f": _entry("f", mode=0o644, digest="d1")}
    new = {"link": _entry("link", SYMLINK, 0o755, target="t"), "f": _entry("f", mode=0o755, digest="d2")}
    assert [(c.path, c.change) for c in compare(old, new)] == [("f", "modified")]


# -- names, create, list, delete ---------------------------------------------------


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden", "-dash", "x" * 64, "sp ace", None, 7])
def test_malformed_snapshot_names_are_invalid_arguments(name: object) -> None:
    with pytest.raises(OpError) as caught:
        check_name(name)
    assert caught.value.code == Code.INVALID_ARGUMENT


def test_a_duplicate_name_is_snapshot_exists(store: Snapshots) -> None:
    store.create("first")
    for name in ("first", BASELINE):
        with pytest.raises(OpError) as caught:
            store.create(name)
        assert caught.value.code == Code.SNAPSHOT_EXISTS


def test_an_unknown_snapshot_is_snapshot_not_found_for_every_operation(store: Snapshots) -> None:
    for operation in (store.load, store.reset, store.delete):
        with pytest.raises(OpError) as caught:
            operation("never-made")
        assert caught.value.code == Code.SNAPSHOT_NOT_FOUND


def test_the_baseline_cannot_be_deleted(store: Snapshots) -> None:
    with pytest.raises(OpError) as caught:
        store.delete(BASELINE)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert [s["name"] for s in store.list()] == [BASELINE]


def test_list_puts_the_baseline_first_with_file_counts_and_sizes(store: Snapshots, root: Path) -> None:
    store.create("a-later")
    (root / "extra").write_bytes(b"12345")
    store.create("0-first-by-name")

    listed = store.list()

    assert listed[0]["name"] == BASELINE
    assert {s["name"] for s in listed} == {BASELINE, "a-later", "0-first-by-name"}
    sizes = {s["name"]: (s["files"], s["size_bytes"]) for s in listed}
    base_bytes = 13 + 14 + 256 + 19
    assert sizes[BASELINE] == (4, base_bytes)
    assert sizes["0-first-by-name"] == (5, base_bytes + 5)


def test_a_snapshot_of_an_unchanged_tree_stores_no_new_content(store: Snapshots, state_dir: Path) -> None:
    before = blob_bytes(state_dir)

    first = store.create("again")
    second = store.create("and-again")

    assert (first["stored_bytes"], second["stored_bytes"]) == (0, 0)
    assert blob_bytes(state_dir) == before
    assert first["files"] == 4


def test_a_snapshot_stores_only_content_not_stored_before(store: Snapshots, root: Path, state_dir: Path) -> None:
    before = blob_bytes(state_dir)
    (root / "new.bin").write_bytes(b"n" * 10_000)
    (root / "copy-of-readme").write_text("one\ntwo\nthree\n")  # content the baseline already holds

    created = store.create("grown")

    assert created["stored_bytes"] == 10_000
    assert blob_bytes(state_dir) == before + 10_000


def test_deleting_a_snapshot_frees_the_content_only_it_held(store: Snapshots, root: Path, state_dir: Path) -> None:
    before = blob_bytes(state_dir)
    (root / "only-here").write_bytes(b"o" * 4096)
    store.create("doomed")
    assert blob_bytes(state_dir) == before + 4096

    store.delete("doomed")

    assert blob_bytes(state_dir) == before
    assert [s["name"] for s in store.list()] == [BASELINE]
    store.reset(BASELINE)  # the baseline's content is all still there
    assert not (root / "only-here").exists()


def test_state_outside_the_root_and_the_staging_dir_never_enter_a_snapshot(store: Snapshots, root: Path) -> None:
    (root / ".roost-staging").mkdir()
    (root / ".roost-staging" / "upload.part").write_text("half")

    store.create("clean")

    assert set(store.load("clean")) == set(store.load(BASELINE))
    assert not [path for path in store.load("clean") if path.startswith((".roost-staging", "/", ".."))]


# -- reset ------------------------------------------------------------------------


def test_reset_restores_content_modes_and_links_exactly_and_removes_extra_paths(store: Snapshots, root: Path) -> None:
    original = exact_state(root)
    _mutate(root)
    assert exact_state(root) != original

    result = store.reset(BASELINE)

    assert exact_state(root) == original
    assert result["removed"] >= 2 and result["restored"] >= 3
    assert compare(store.load(BASELINE), store.current()) == []


def test_reset_to_a_named_snapshot_then_back_to_the_baseline(store: Snapshots, root: Path) -> None:
    original = exact_state(root)
    _mutate(root)
    store.create("mutated")
    mutated = exact_state(root)
    (root / "README").write_text("scribbled\n")
    (root / "added.txt").chmod(0o600)
    (root / "later").mkdir()

    store.reset("mutated")
    assert exact_state(root) == mutated

    store.reset(BASELINE)
    assert exact_state(root) == original


def test_reset_turns_a_directory_back_into_a_file_and_a_file_back_into_a_directory(
    store: Snapshots, root: Path
) -> None:
    original = exact_state(root)
    (root / "src" / "app.py").unlink()
    (root / "src").rmdir()
    (root / "src").write_text("now a file\n")
    (root / "README").unlink()
    (root / "README").mkdir()
    (root / "README" / "nested").write_text("x\n")

    store.reset(BASELINE)

    assert exact_state(root) == original


def test_reset_leaves_files_that_match_untouched(store: Snapshots, root: Path) -> None:
    inode = os.stat(root / "README").st_ino
    (root / "run.sh").write_text("changed\n")

    result = store.reset(BASELINE)

    assert os.stat(root / "README").st_ino == inode
    assert result == {"restored": 1, "removed": 0}


def test_reset_does_not_follow_a_link_that_replaced_a_directory(store: Snapshots, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me\n")
    (root / "src" / "app.py").unlink()
    (root / "src").rmdir()
    os.symlink(outside, root / "src")

    store.reset(BASELINE)

    assert (outside / "precious").read_text() == "keep me\n"
    assert sorted(os.listdir(outside)) == ["precious"]
    assert (root / "src" / "app.py").read_text() == "print('app')\n"


# -- the diff op -----------------------------------------------------------------------


@pytest.fixture
def agent(root: Path, state_dir: Path, store: Snapshots) -> AgentState:
    agent = AgentState(WorkspacePaths(str(root)), str(state_dir), str(root.parent / "scratch"), {})
    agent.part("snapshots", lambda: store)
    return agent


def restarted(agent: AgentState) -> AgentState:
    """The same workspace served by a new agent: nothing kept in memory, the scan index read from disk."""
    return AgentState(agent.paths, agent.state_dir, agent.scratch_dir, dict(agent.base_env))


def call_diff(agent: AgentState, **args: Any) -> tuple[dict[str, Any], str, list[bytes]]:
    """The op's result with the change records it streamed under `changes`, its patch text, and its DATA bodies."""
    sent: list[tuple[str, bytes]] = []
    ctx = RequestContext(
        1, Op.DIFF, args, b"", lambda channel, data: sent.append((channel, data)), None, threading.Event()
    )
    reply = OpTable(agent).call(ctx)
    if reply.after is not None:
        reply.after()  # as the connection does once the answer is sent
    result = reply.wire_result()
    assert {channel for channel, _ in sent} <= {"records"}
    chunks = [data for _, data in sent]
    records = [record for chunk in chunks for record in decode_records(chunk)]
    changes = [record for record in records if "patch" not in record]
    assert result["count"] == len(changes)
    patch = "".join(record["patch"] for record in records if "patch" in record)
    return {**result, "changes": changes}, patch, chunks


def test_the_diff_op_summarises_every_change_and_streams_the_patch(agent: AgentState, root: Path) -> None:
    _mutate(root)

    result, patch, _ = call_diff(agent)

    by_path = {c["path"]: c for c in result["changes"]}
    assert {path: c["change"] for path, c in by_path.items()} == {
        "README": "modified",
        "added.txt": "added",
        "data.bin": "deleted",
        "readme-link": "modified",
        "run.sh": "mode_changed",
        "src": "mode_changed",
        "src/app.py": "type_changed",
        "src/app.py/deep.txt": "added",
    }
    assert result["counts"] == {"modified": 2, "added": 2, "deleted": 1, "mode_changed": 2, "type_changed": 1}
    assert by_path["data.bin"]["binary"] is True and by_path["README"]["binary"] is False
    assert (by_path["readme-link"]["old_target"], by_path["readme-link"]["new_target"]) == ("README", "/etc/passwd")
    assert (by_path["run.sh"]["old_mode"], by_path["run.sh"]["new_mode"]) == (0o755, 0o644)
    assert (by_path["README"]["old_size"], by_path["README"]["new_size"]) == (14, 14)
    assert result["truncated"] is False and result["against"] == BASELINE
    assert "-two\n+TWO\n" in patch and "GIT binary patch" in patch and "+/etc/passwd" in patch
    assert "root:" not in patch


def test_the_diff_op_keeps_only_paths_under_the_filters(agent: AgentState, root: Path) -> None:
    _mutate(root)

    result, patch, _ = call_diff(agent, paths=["/workspace/src", "README"])

    assert [c["path"] for c in result["changes"]] == ["README", "src", "src/app.py", "src/app.py/deep.txt"]
    assert "data.bin" not in patch and "+deep" in patch


def test_the_diff_op_refuses_a_filter_outside_the_workspace(agent: AgentState) -> None:
    with pytest.raises(OpError) as caught:
        call_diff(agent, paths=["/etc"])
    assert caught.value.code == Code.PATH_OUTSIDE_WORKSPACE


def test_the_diff_op_with_stat_sends_no_patch_text(agent: AgentState, root: Path) -> None:
    _mutate(root)
    result, patch, _ = call_diff(agent, stat=True)
    assert patch == "" and len(result["changes"]) == 8


def test_the_diff_op_cuts_at_max_bytes_with_a_marker(agent: AgentState, root: Path) -> None:
    _mutate(root)

    result, patch, _ = call_diff(agent, max_bytes=100)

    assert result["truncated"] is True
    assert len(result["changes"]) == 8
    head, marker = patch.split("\n[... diff cut at 100 bytes: ", 1)
    assert len(head) < 100 + 80
    assert "more changed path(s) not shown" in marker


def test_the_diff_op_cap_holds_inside_one_large_file(agent: AgentState, root: Path) -> None:
    (root / "README").write_text("".join(f"line {i}\n" for i in range(20_000)))

    result, patch, _ = call_diff(agent, paths=["README"], max_bytes=4096)

    assert result["truncated"] is True
    assert len(patch) < 4096 + 300
    assert "the patch of README is incomplete" in patch


def test_the_diff_op_streams_a_large_patch_in_bounded_chunks_that_apply(
    agent: AgentState, root: Path, tmp_path: Path
) -> None:
    original = (root / "README").read_bytes()
    (root / "README").write_text("".join(f"line {i}\n" for i in range(60_000)))  # ~700 KB of patch

    result, patch, chunks = call_diff(agent, paths=["README"], max_bytes=None)

    assert result["truncated"] is False
    assert len(chunks) > 1 and max(map(len, chunks)) < 300 * 1024
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "README").write_bytes(original)
    subprocess.run(["git", "apply", "-"], cwd=copy, input=patch, text=True, check=True, timeout=30)
    assert (copy / "README").read_bytes() == (root / "README").read_bytes()


@pytest.mark.parametrize("bad", [0, -1, True, "100"])
def test_the_diff_op_refuses_a_max_bytes_that_is_not_a_positive_integer(agent: AgentState, bad: object) -> None:
    with pytest.raises(OpError) as caught:
        call_diff(agent, max_bytes=bad)
    assert caught.value.code == Code.INVALID_ARGUMENT


def test_the_diff_op_against_a_snapshot_shows_only_later_changes(
    agent: AgentState, store: Snapshots, root: Path
) -> None:
    (root / "first.txt").write_text("1\n")
    store.create("checkpoint")
    (root / "second.txt").write_text("2\n")

    result, _, _ = call_diff(agent, against="checkpoint")

    assert [c["path"] for c in result["changes"]] == ["second.txt"]
    assert result["against"] == "checkpoint"


def test_the_diff_op_pages_through_every_change_once_with_each_patch_whole(agent: AgentState, root: Path) -> None:
    for i in range(40):
        (root / f"f{i:02d}.txt").write_text(f"file {i}\n" * (1 + i % 5))
    whole, whole_patch, _ = call_diff(agent, max_bytes=None)

    changes: list[str] = []
    patch = ""
    cursor = None
    pages = 0
    while True:
        args: dict[str, Any] = {"max_bytes": 400, "limit": 7}
        if cursor is not None:
            args["cursor"] = cursor
        page, text, _ = call_diff(agent, **args)
        assert 1 <= len(page["changes"]) <= 7
        assert len(text.encode()) < 400 + 200, "a page ends before a patch that does not fit"
        assert page["counts"] == whole["counts"], "counts cover the whole diff on every page"
        changes += [c["path"] for c in page["changes"]]
        patch += text
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert changes == [c["path"] for c in whole["changes"]]
    assert patch == whole_patch and pages > 40 * 40 // 400
    assert "[..." not in patch


def test_a_page_whose_first_patch_is_too_large_cuts_it_says_so_and_moves_on(agent: AgentState, root: Path) -> None:
    (root / "README").write_text("".join(f"line {i}\n" for i in range(5_000)))
    (root / "small.txt").write_text("small\n")

    first, text, _ = call_diff(agent, max_bytes=2048, limit=10)
    assert [c["path"] for c in first["changes"]] == ["README"]
    assert "the patch of README is cut at 2048 bytes" in text and first["truncated"] is True
    second, text, _ = call_diff(agent, max_bytes=2048, limit=10, cursor=first["next_cursor"])
    assert [c["path"] for c in second["changes"]] == ["small.txt"] and "+small" in text
    assert second["next_cursor"] is None


def test_diff_paths_name_bytes_that_are_not_utf8_in_their_quoted_form(agent: AgentState, root: Path) -> None:
    (root / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"x\n")
    result, patch, _ = call_diff(agent, paths=['"/workspace/caf\\351.txt"'])
    assert [c["path"] for c in result["changes"]] == ['"caf\\351.txt"']
    assert 'diff --git "a/caf\\351.txt" "b/caf\\351.txt"' in patch


# -- the diff op with ignore rules --------------------------------------------------------


def test_the_diff_op_leaves_excluded_paths_out_of_both_sides(agent: AgentState, root: Path) -> None:
    (root / ".gitignore").write_text("node_modules/\n")
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "index.js").write_text("added\n")
    (root / "data.bin").unlink()  # a deletion the rules hide: the baseline side is filtered too
    (root / "README").write_text("changed\n")
    (root / "debug.log").write_text("log\n")

    result, patch, _ = call_diff(agent, exclude=["*.bin", "*.log"], gitignore=True)

    assert [c["path"] for c in result["changes"]] == [".gitignore", "README"]
    assert "index.js" not in patch and "debug.log" not in patch
    everything, _, _ = call_diff(agent, stat=True)
    assert {"data.bin", "debug.log", "node_modules/pkg/index.js"} <= {c["path"] for c in everything["changes"]}


def test_the_diff_op_leaves_git_out_only_when_asked(agent: AgentState, root: Path) -> None:
    (root / ".git").mkdir()
    (root / ".git" / "index").write_bytes(b"DIRC")

    kept, _, _ = call_diff(agent, stat=True)
    left, patch, _ = call_diff(agent, include_git_dir=False)

    assert {c["path"] for c in kept["changes"]} == {".git", ".git/index"}
    assert left["changes"] == [] and patch == ""


def test_a_filtered_diff_keeps_the_cached_hashes_of_what_it_skipped(
    agent: AgentState, root: Path, state_dir: Path
) -> None:
    (root / "node_modules").mkdir()
    for i in range(20):
        (root / "node_modules" / f"m{i}.js").write_text(f"{i}\n")
    call_diff(agent, stat=True)
    # A hash is trusted only for files changed well before its scan: date that scan a second later.
    index = json.loads((state_dir / "tree-index.json").read_text())
    index["scanned_at_ns"] = time.time_ns() + 1_000_000_000
    (state_dir / "tree-index.json").write_text(json.dumps(index))
    cached = {row[0]: row[4] for row in index["entries"] if row[0].startswith("node_modules/")}

    call_diff(restarted(agent), stat=True, exclude=["node_modules/"])

    kept = {row[0]: row[4] for row in json.loads((state_dir / "tree-index.json").read_text())["entries"]}
    assert len(cached) == 20 and {path: kept.get(path) for path in cached} == cached


def test_a_filtered_diff_drops_cached_hashes_its_scan_could_not_trust_yet(
    agent: AgentState, root: Path, state_dir: Path
) -> None:
    (root / "node_modules").mkdir()
    (root / "node_modules" / "m.js").write_text("1\n")
    call_diff(agent, stat=True)
    # Date the scan to the file's own change: a write within the same clock tick could follow unseen.
    index = json.loads((state_dir / "tree-index.json").read_text())
    index["scanned_at_ns"] = os.stat(root / "node_modules" / "m.js").st_ctime_ns
    (state_dir / "tree-index.json").write_text(json.dumps(index))

    call_diff(restarted(agent), stat=True, exclude=["node_modules/"])

    rows = json.loads((state_dir / "tree-index.json").read_text())["entries"]
    assert "node_modules/m.js" not in {row[0] for row in rows}


@pytest.mark.parametrize(
    "args",
    [
        {"exclude": "*.log"},
        {"exclude": [3]},
        {"exclude": [""]},
        {"exclude": ["x" * 600]},
        {"exclude": ["*"] * 65},
        {"gitignore": "yes"},
        {"include_git_dir": 1},
    ],
)
def test_the_diff_op_refuses_malformed_ignore_arguments(agent: AgentState, args: dict[str, Any]) -> None:
    with pytest.raises(OpError) as caught:
        call_diff(agent, **args)
    assert caught.value.code == Code.INVALID_ARGUMENT


# -- durability ---------------------------------------------------------------------


class CountingFsync:
    """Wraps os.fsync, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._real = os.fsync

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self._real(fd)


def _fsyncs_of_a_snapshot(store: Snapshots, root: Path, files: int, name: str, monkeypatch: pytest.MonkeyPatch) -> int:
    (root / name).mkdir()
    for index in range(files):
        (root / name / f"f{index}").write_text(f"{name} {index}\n")
    counter = CountingFsync()
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", counter)
        store.create(name)
    return counter.calls


def test_a_snapshot_is_synced_once_whatever_the_number_of_files(
    store: Snapshots, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    few = _fsyncs_of_a_snapshot(store, root, 3, "few", monkeypatch)
    many = _fsyncs_of_a_snapshot(store, root, 300, "many", monkeypatch)

    assert 0 < few == many <= 4  # the pack and its directory, the manifest and its directory
    assert len(store.load("many")) == len(store.load("few")) + 301


def test_a_snapshot_survives_the_agent_restarting(store: Snapshots, root: Path, state_dir: Path) -> None:
    (root / "kept.bin").write_bytes(b"k" * 5000)
    store.create("kept")
    (root / "kept.bin").write_bytes(b"changed")

    reopened = Snapshots(str(state_dir), WorkspacePaths(str(root)))  # a new agent: nothing from memory
    reopened.reset("kept")

    assert (root / "kept.bin").read_bytes() == b"k" * 5000


# -- directories set aside by a reset ---------------------------------------------


def _many(root: Path, top: str, files: int = 150) -> None:
    for index in range(files):
        directory = root / top / f"d{index // 50}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}").write_text(f"{top} {index}\n")


def _inodes(root: Path, top: str) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_ino for p in (root / top).rglob("*")}


@pytest.fixture
def aside_store(root: Path, state_dir: Path, tmp_path: Path) -> Snapshots:
    store = Snapshots(str(state_dir), WorkspacePaths(str(root)), str(tmp_path / "scratch"))
    store.create(BASELINE)
    return store


def test_reset_away_and_back_renames_a_large_directory_back_whole(aside_store: Snapshots, root: Path) -> None:
    _many(root, "node_modules")
    aside_store.create("installed")
    wanted, inodes = exact_state(root), _inodes(root, "node_modules")

    aside_store.reset(BASELINE)
    assert not (root / "node_modules").exists()
    back = aside_store.reset("installed")

    assert exact_state(root) == wanted
    assert _inodes(root, "node_modules") == inodes  # the same files, renamed back: nothing created again
    assert back["restored"] == len(inodes) + 1


def test_a_set_aside_directory_changed_meanwhile_is_not_taken_back(
    aside_store: Snapshots, root: Path, tmp_path: Path
) -> None:
    _many(root, "node_modules")
    aside_store.create("installed")
    wanted = exact_state(root)
    aside_store.reset(BASELINE)
    [kept] = (tmp_path / "scratch" / "reset-aside").iterdir()
    (kept / "d0" / "f0").write_text("tampered while set aside\n")
    (kept / "d1" / "extra").write_text("and grown\n")

    aside_store.reset("installed")

    assert exact_state(root) == wanted


def test_what_a_reset_set_aside_goes_once_a_later_reset_ends(
    aside_store: Snapshots, root: Path, tmp_path: Path
) -> None:
    _many(root, "node_modules")
    aside_store.create("installed")
    aside_store.reset(BASELINE)
    assert len(list((tmp_path / "scratch" / "reset-aside").iterdir())) == 1

    aside_store.reset(BASELINE)  # sets nothing aside, so the previous one's directory goes

    wait_until(lambda: not (tmp_path / "scratch").exists(), what="the aside directory to be removed")
    assert not (root / "node_modules").exists()


def test_directories_set_aside_inside_the_workspace_never_show_in_a_snapshot_or_diff(
    root: Path, state_dir: Path
) -> None:
    store = Snapshots(str(state_dir / "inside"), WorkspacePaths(str(root)), str(root / ".roost-staging"))
    store.create(BASELINE)
    _many(root, "build")
    store.create("built")
    store.reset(BASELINE)

    assert (root / ".roost-staging" / "reset-aside").is_dir()
    assert [c.path for c in compare(store.load(BASELINE), store.current())] == []
    store.create("after")
    assert not [p for p in store.load("after") if p.startswith(".roost-staging")]


def test_after_a_directory_came_back_the_next_scan_reads_none_of_its_files(
    aside_store: Snapshots, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roost.agent.snapshots import trees

    _many(root, "node_modules")
    real_now = time.time_ns
    with monkeypatch.context() as patch:
        # As if a second passed since the files were written: none is too fresh to trust its stat data.
        patch.setattr(time, "time_ns", lambda: real_now() + 1_000_000_000)
        aside_store.create("installed")
        aside_store.reset(BASELINE)
        aside_store.reset("installed")
    read: list[str] = []
    real = trees.hash_file

    def counting(dir_fd: int, name: str) -> trees.Hashed:
        read.append(name)
        return real(dir_fd, name)

    with monkeypatch.context() as patch:
        patch.setattr(trees, "hash_file", counting)
        tree = aside_store.current()

    assert read == []
    assert compare(aside_store.load("installed"), tree) == []
