"""Tree scans with a stat cache, on real directories."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from roost.agent.fs.dirtree import walk
from roost.agent.snapshots import trees
from roost.agent.snapshots.trees import DIR, FILE, SYMLINK, Entry, hash_file, scan


def scan_dir(root: Path, *args: object, **kwargs: object) -> trees.Tree:
    """`scan` of the directory at `root`, as the agent calls it: with an open descriptor."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        return scan(fd, *args, **kwargs)  # type: ignore[arg-type]
    finally:
        os.close(fd)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "README").write_text("readme\n")
    (root / "README").chmod(0o644)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "src").chmod(0o750)
    return root


class CountingHash:
    """Wraps `hash_file`, recording each path it is asked to hash."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, dir_fd: int, name: str) -> trees.Hashed:
        self.paths.append(name)
        return hash_file(dir_fd, name)


def _scan_counting(
    monkeypatch: pytest.MonkeyPatch, root: Path, previous: trees.Tree | None = None, racy_ns: int = 0
) -> tuple[trees.Tree, list[str]]:
    """Scan counting hash calls; `previous` counts as taken just now, trusted after `racy_ns`."""
    counter = CountingHash()
    with monkeypatch.context() as patch:
        patch.setattr(trees, "hash_file", counter)
        tree = scan_dir(root, previous, previous_at_ns=time.time_ns(), racy_ns=racy_ns)
    return tree, sorted(counter.paths)


def test_scan_records_every_path_with_its_kind_mode_size_and_digest(root: Path) -> None:
    tree = scan_dir(root)

    assert sorted(tree) == ["README", "run.sh", "src", "src/pkg", "src/pkg/mod.py"]
    readme = tree["README"]
    assert (readme.kind, readme.mode, readme.size, readme.digest) == (FILE, 0o644, 7, _sha(b"readme\n"))
    assert (tree["run.sh"].kind, tree["run.sh"].mode) == (FILE, 0o755)
    assert (tree["src"].kind, tree["src"].mode, tree["src"].digest) == (DIR, 0o750, None)
    assert tree["src/pkg/mod.py"].path == "src/pkg/mod.py"


def test_scan_records_a_symlink_by_its_target_and_never_follows_it(root: Path) -> None:
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink("/etc", root / "etc")
    os.symlink("missing", root / "dangling")

    tree = scan_dir(root)

    assert (tree["passwd"].kind, tree["passwd"].target, tree["passwd"].digest) == (SYMLINK, "/etc/passwd", None)
    assert (tree["etc"].kind, tree["etc"].target) == (SYMLINK, "/etc")
    assert (tree["dangling"].kind, tree["dangling"].target) == (SYMLINK, "missing")
    assert not [path for path in tree if path.startswith("etc/")]


def test_scan_leaves_out_excluded_paths_and_everything_under_them(root: Path) -> None:
    (root / ".roost-staging" / "half").mkdir(parents=True)
    (root / ".roost-staging" / "half" / "upload").write_text("partial")

    tree = scan_dir(root, exclude=frozenset({".roost-staging"}))

    assert not [path for path in tree if path.startswith(".roost-staging")]
    assert "README" in tree


def test_a_rescan_hashes_only_the_files_whose_stat_changed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, hashed = _scan_counting(monkeypatch, root)
    assert hashed == ["README", "mod.py", "run.sh"]

    again, hashed = _scan_counting(monkeypatch, root, first)
    assert hashed == []
    assert again == first

    with open(root / "README", "a") as fh:
        fh.write("more\n")
    changed, hashed = _scan_counting(monkeypatch, root, again)
    assert hashed == ["README"]
    assert changed["README"].digest == _sha(b"readme\nmore\n")
    assert changed["run.sh"] == first["run.sh"]


def test_files_changed_just_before_the_previous_scan_are_hashed_again(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git's racy-clean rule: a same-size rewrite in the same clock tick would keep its stat."""
    first = scan_dir(root)

    _, hashed = _scan_counting(monkeypatch, root, first, racy_ns=60 * 1_000_000_000)

    assert hashed == ["README", "mod.py", "run.sh"]


def test_a_file_replaced_under_the_same_name_is_hashed_again(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan_dir(root)
    replacement = root / "README.new"
    replacement.write_text("README\n")  # same size, new inode
    os.replace(replacement, root / "README")

    tree, hashed = _scan_counting(monkeypatch, root, first)

    assert hashed == ["README"]
    assert tree["README"].digest == _sha(b"README\n")


def test_a_path_that_was_a_link_is_hashed_when_it_becomes_a_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.symlink("README", root / "alias")
    first = scan_dir(root)
    os.unlink(root / "alias")
    (root / "alias").write_text("now a file\n")

    tree, hashed = _scan_counting(monkeypatch, root, first)

    assert hashed == ["alias"]
    assert (tree["alias"].kind, tree["alias"].digest) == (FILE, _sha(b"now a file\n"))


def test_entries_round_trip_through_their_rows(root: Path) -> None:
    os.symlink("/etc/passwd", root / "passwd")
    for entry in scan_dir(root).values():
        assert Entry.from_row(entry.to_row()) == entry


def test_a_file_swapped_for_a_link_between_listing_and_hashing_is_recorded_as_the_link(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "outside.txt").write_text("outside\n")

    def swap_then_hash(dir_fd: int, name: str) -> trees.Hashed:
        if name == "README":
            os.unlink(root / "README")
            os.symlink(tmp_path / "outside.txt", root / "README")
        return hash_file(dir_fd, name)

    with monkeypatch.context() as patch:
        patch.setattr(trees, "hash_file", swap_then_hash)
        tree = scan_dir(root)
    assert (tree["README"].kind, tree["README"].target) == (SYMLINK, str(tmp_path / "outside.txt"))
    assert tree["README"].digest is None


def test_a_walk_does_not_descend_into_a_directory_swapped_for_a_link_after_it_was_listed(
    root: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("outside\n")
    seen = []
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for found in walk(top, ordered=True):
            seen.append(found.rel)
            if found.rel == "src":  # listed and stat'ed as a directory; the workspace swaps it now
                os.rename(root / "src", tmp_path / "src-moved")
                os.symlink(tmp_path / "outside", root / "src")
    finally:
        os.close(top)
    assert seen == ["README", "run.sh", "src"]


def _walked(root: Path, **kwargs: object) -> list[str]:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return [found.rel for found in walk(fd, **kwargs)]  # type: ignore[arg-type]
    finally:
        os.close(fd)


def test_an_ordered_walk_is_in_tree_order_by_the_bytes_of_names(tmp_path: Path) -> None:
    for rel in ["a-c", "a/b", "a/z", os.fsdecode(b"\xe9"), "\u00e9", "B", "a.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    # A directory comes before what it holds, and "a/..." before "a-c" because its name is shorter.
    assert [os.fsencode(rel) for rel in _walked(tmp_path, ordered=True)] == [
        b"B",
        b"a",
        b"a/b",
        b"a/z",
        b"a-c",
        b"a.txt",
        "\u00e9".encode(),
        b"\xe9",
    ]


def test_a_walk_resumed_after_any_entry_yields_exactly_what_followed_it(tmp_path: Path) -> None:
    for rel in ["a/b/c", "a/b/d", "a/e", "f", "g/h/i/j", "g/k", os.fsdecode(b"g/\xff")]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    whole = _walked(tmp_path, ordered=True)
    for i, rel in enumerate(whole):
        after = tuple(os.fsencode(part) for part in rel.split("/"))
        assert _walked(tmp_path, after=after) == whole[i + 1 :], rel
    # A key that names nothing (removed since) resumes where it would have been.
    assert _walked(tmp_path, after=(b"a", b"b", b"cc")) == whole[whole.index("a/b/d") :]


def test_a_scan_says_which_files_are_binary_as_a_diff_would(root: Path) -> None:
    (root / "nul.bin").write_bytes(b"text\0more")
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    # A character split across the read chunks is still text.
    (root / "split.txt").write_bytes(b"a" * (trees.CHUNK - 1) + "é\n".encode())

    tree = scan_dir(root)

    binary = {path: entry.binary for path, entry in tree.items() if entry.kind == FILE}
    assert binary == {
        "README": False,
        "run.sh": False,
        "src/pkg/mod.py": False,
        "nul.bin": True,
        "latin1.txt": True,
        "split.txt": False,
    }


def test_a_diff_takes_binary_from_the_scan_without_reading_the_file(root: Path) -> None:
    from roost.agent.snapshots.diff_text import binary_change

    tree = scan_dir(root)

    def never(entry: Entry) -> bytes:
        raise AssertionError(f"{entry.path} was read")

    assert binary_change(None, tree["README"], never) is False
    assert binary_change(tree["README"], Entry("README", FILE, 0o644, 3, "d", binary=True), never) is True
    assert binary_change(None, Entry("old", FILE, 0o644, 3, "d"), lambda e: b"\0") is True  # an older scan: read


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"plain text\n",
        b"x" * (trees.CHUNK - 1),
        b"x" * trees.CHUNK,
        b"y" * (2 * trees.CHUNK + 5) + b"\xff",  # not UTF-8, past the first read
        "ünïcode\n".encode() * 1000,
        b"nul \0 early",
    ],
    ids=["empty", "small", "chunk-1", "chunk", "large-binary-tail", "utf8", "nul"],
)
def test_hash_file_reads_any_size_whole(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "f").write_bytes(content)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        hashed = hash_file(fd, "f")
    finally:
        os.close(fd)
    assert hashed.digest == hashlib.sha256(content).hexdigest()
    assert hashed.size == len(content)
    assert hashed.binary == trees.is_binary(content)
    assert hashed.binary == (b"\0" in content[:8192] or content.endswith(b"\xff"))
