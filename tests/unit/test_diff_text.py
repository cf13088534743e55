"""Rendering changes as a git-style patch: hunks, markers, modes, links, binary literals.

The rendered text is checked both as text and by handing it to the tools it
is for (`git apply`, GNU `patch -p1`) on real directories.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.agent.files.patch import _unquote
from roost.agent.snapshots.diff_text import binary_change, git_blob_id, is_binary, patch_for, quoted
from roost.agent.snapshots.named import compare
from roost.agent.snapshots.trees import DIR, FILE, SYMLINK, Entry, scan

TOOL_TIMEOUT = 30.0


def _file(path: str, data: bytes, mode: int = 0o644) -> tuple[Entry, bytes]:
    return Entry(path, FILE, mode, len(data), hashlib.sha256(data).hexdigest()), data


def _render(path: str, change: str, old: tuple[Entry, bytes] | None, new: tuple[Entry, bytes] | None) -> str:
    contents = {id(pair[0]): pair[1] for pair in (old, new) if pair is not None}
    return "".join(
        patch_for(
            path,
            change,
            old[0] if old else None,
            new[0] if new else None,
            lambda entry: contents[id(entry)],
        )
    )


def _scan(root: Path) -> dict[str, Entry]:
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        return scan(fd)
    finally:
        os.close(fd)


def render_trees(before: Path, after: Path) -> str:
    """The whole patch from directory `before` to directory `after`, as the agent renders it."""

    def loader(root: Path, entry: Entry) -> bytes:
        if entry.kind == SYMLINK:
            return (entry.target or "").encode()
        return (root / entry.path).read_bytes()

    old, new = _scan(before), _scan(after)
    pieces: list[str] = []
    for change in compare(old, new):

        def load(entry: Entry, change_old: Entry | None = change.old) -> bytes:
            return loader(before if entry is change_old else after, entry)

        pieces.extend(patch_for(change.path, change.change, change.old, change.new, load))
    return "".join(pieces)


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert proc.returncode == 0, f"{argv} failed: {proc.stdout}{proc.stderr}"
    return proc


def _tree(root: Path) -> dict[str, object]:
    """Content, exec bit and link target of everything under `root`."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                found[rel] = ("link", os.readlink(full))
            elif full.is_dir():
                found[rel] = ("dir",)
            else:
                found[rel] = ("file", bool(full.stat().st_mode & 0o111), full.read_bytes())
    return found


def decode_binary_literal(patch: str) -> bytes:
    """The bytes a `GIT binary patch` literal carries, decoded as git does (base85 lines, then zlib)."""
    lines = patch.split("GIT binary patch\n", 1)[1].splitlines()
    assert lines[0].startswith("literal ")
    size = int(lines[0].split()[1])
    packed = b""
    for line in lines[1:]:
        if not line:
            break
        length = ord(line[0]) - ord("A") + 1 if line[0] <= "Z" else ord(line[0]) - ord("a") + 27
        packed += base64.b85decode(line[1:])[:length]
    data = zlib.decompress(packed)
    assert len(data) == size
    return data


@pytest.mark.parametrize("data", [b"", b"hello\n", b"no newline", bytes(range(256)) * 40])
def test_git_blob_ids_match_git_hash_object(data: bytes, tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(data)
    expected = _run(["git", "hash-object", "--no-filters", "blob"], tmp_path).stdout.strip()
    assert git_blob_id(data) == expected


def test_text_counts_as_binary_only_with_a_nul_or_invalid_utf8() -> None:
    assert not is_binary("ünïcode text\n".encode())
    assert is_binary(b"text with a \0 nul")
    assert is_binary(b"\xff\xfe latin-1 bytes")
    old, old_data = _file("a", b"text\n")
    new, new_data = _file("a", b"\0\1\2")
    contents = {id(old): old_data, id(new): new_data}
    assert binary_change(old, new, lambda entry: contents[id(entry)])
    assert not binary_change(old, None, lambda entry: contents[id(entry)])


def test_a_text_change_renders_unified_hunks_with_three_lines_of_context() -> None:
    before = "".join(f"line {i}\n" for i in range(1, 21)).encode()
    after = before.replace(b"line 10\n", b"line ten\n")

    patch = _render("notes.txt", "modified", _file("notes.txt", before), _file("notes.txt", after))

    assert patch == (
        "diff --git a/notes.txt b/notes.txt\n"
        "--- a/notes.txt\n"
        "+++ b/notes.txt\n"
        "@@ -7,7 +7,7 @@\n"
        " line 7\n line 8\n line 9\n"
        "-line 10\n"
        "+line ten\n"
        " line 11\n line 12\n line 13\n"
    )


def test_a_missing_final_newline_is_marked_on_the_side_that_lacks_it() -> None:
    added_newline = _render("f", "modified", _file("f", b"a\nb"), _file("f", b"a\nb\n"))
    assert added_newline.endswith("-b\n\\ No newline at end of file\n+b\n")

    dropped_newline = _render("f", "modified", _file("f", b"a\nb\n"), _file("f", b"a\nc"))
    assert dropped_newline.endswith("-b\n+c\n\\ No newline at end of file\n")

    neither = _render("f", "modified", _file("f", b"x\ny"), _file("f", b"x\nz"))
    assert neither.endswith("-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n")


def test_lines_end_only_at_newlines_not_at_carriage_returns_or_form_feeds() -> None:
    patch = _render("f", "modified", _file("f", b"one\rtwo\x0cthree\n"), _file("f", b"one\rTWO\x0cthree\n"))
    assert patch.endswith("@@ -1 +1 @@\n-one\rtwo\x0cthree\n+one\rTWO\x0cthree\n")
    assert "No newline" not in patch


def test_a_mode_only_change_has_mode_lines_and_no_hunks() -> None:
    patch = _render("run.sh", "mode_changed", _file("run.sh", b"#!/bin/sh\n"), _file("run.sh", b"#!/bin/sh\n", 0o755))
    assert patch == "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"


def test_a_mode_and_content_change_carries_both() -> None:
    patch = _render("run.sh", "modified", _file("run.sh", b"echo a\n", 0o755), _file("run.sh", b"echo b\n"))
    assert patch.startswith("diff --git a/run.sh b/run.sh\nold mode 100755\nnew mode 100644\n--- a/run.sh\n")
    assert patch.endswith("-echo a\n+echo b\n")


def test_added_and_deleted_files_use_dev_null_and_their_mode() -> None:
    added = _render("new.sh", "added", None, _file("new.sh", b"hi\n", 0o700))
    assert added == (
        "diff --git a/new.sh b/new.sh\nnew file mode 100755\n--- /dev/null\n+++ b/new.sh\n@@ -0,0 +1 @@\n+hi\n"
    )
    deleted = _render("old.txt", "deleted", _file("old.txt", b"a\nb\n"), None)
    assert deleted == (
        "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n"
        "@@ -1,2 +0,0 @@\n-a\n-b\n"
    )


def test_a_symlink_renders_as_its_target_text_with_mode_120000() -> None:
    link = Entry("passwd", SYMLINK, 0o777, target="/etc/passwd")
    patch = "".join(patch_for("passwd", "added", None, link, lambda entry: (entry.target or "").encode()))
    assert patch == (
        "diff --git a/passwd b/passwd\nnew file mode 120000\n--- /dev/null\n+++ b/passwd\n"
        "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n"
    )


def test_a_binary_literal_decodes_back_to_the_new_bytes_with_both_blob_ids() -> None:
    before = bytes(range(256)) * 3
    after = os.urandom(5000)  # incompressible: many full 52-byte lines and a short last one

    patch = _render("blob.bin", "modified", _file("blob.bin", before), _file("blob.bin", after))

    assert f"index {git_blob_id(before)}..{git_blob_id(after)}\nGIT binary patch\nliteral 5000\n" in patch
    assert decode_binary_literal(patch) == after
    assert "---" not in patch


def test_a_deleted_binary_file_carries_an_empty_literal_and_the_null_id() -> None:
    gone = b"\0\1\2"
    patch = _render("gone.bin", "deleted", _file("gone.bin", gone), None)
    assert f"index {git_blob_id(gone)}..{'0' * 40}\n" in patch
    assert decode_binary_literal(patch) == b""


def test_a_type_change_is_a_deletion_then_an_addition_and_directories_have_no_text() -> None:
    old, old_data = _file("thing", b"was a file\n")
    link = Entry("thing", SYMLINK, 0o777, target="elsewhere")
    contents = {id(old): old_data, id(link): b"elsewhere"}
    patch = "".join(patch_for("thing", "type_changed", old, link, lambda entry: contents[id(entry)]))
    deletion, addition = patch.split("diff --git", 2)[1:]
    assert "deleted file mode 100644" in deletion and "-was a file" in deletion
    assert "new file mode 120000" in addition and "+elsewhere" in addition

    directory = Entry("thing", DIR, 0o755)
    to_dir = "".join(patch_for("thing", "type_changed", old, directory, lambda entry: contents[id(entry)]))
    assert to_dir.count("diff --git") == 1 and "deleted file mode" in to_dir
    assert list(patch_for("d", "added", None, directory, lambda entry: b"")) == []


def _write_tree(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            os.symlink(data, path)
        else:
            path.write_bytes(data)


def test_a_patch_of_every_kind_of_change_applies_with_git_apply(tmp_path: Path) -> None:
    before, after, copy = tmp_path / "before", tmp_path / "after", tmp_path / "copy"
    common = {"keep.txt": b"same\n", "dir/inner.txt": b"inner\n"}
    _write_tree(
        before,
        {
            **common,
            "edit.txt": b"a\nb\nc\n",
            "gone.txt": b"bye\n",
            "gone.bin": b"\0gone",
            "empty_gone": b"",
            "blob.bin": bytes(range(256)),
            "was_file": b"file\n",
            "link": "keep.txt",
            "with space.txt": b"spaced\n",
        },
    )
    _write_tree(
        after,
        {
            **common,
            "edit.txt": b"a\nB\nc",
            "new.bin": os.urandom(300),
            "empty_new": b"",
            "blob.bin": bytes(reversed(range(256))),
            "was_file/now.txt": b"now a dir\n",
            "link": "/etc/passwd",
            "etc": "/etc",
            "with space.txt": b"spaced out\n",
        },
    )
    (before / "mode.sh").write_text("#!/bin/sh\n")
    (after / "mode.sh").write_text("#!/bin/sh\n")
    (after / "mode.sh").chmod(0o755)
    _write_tree(copy, {})
    _run(["cp", "-a", f"{before}/.", str(copy)], tmp_path)

    patch = render_trees(before, after)
    _run(["git", "apply", "--whitespace=nowarn", "-"], copy, stdin=patch)

    assert _tree(copy) == _tree(after)


def test_a_text_only_patch_applies_with_gnu_patch(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    _write_tree(before, {"edit.txt": b"1\n2\n3\n4\n5\n6\n7\n8\n", "gone.txt": b"bye\n", "tail": b"no newline"})
    _write_tree(
        after,
        {"edit.txt": b"1\n2\nthree\n4\n5\n6\n7\n8\nnine\n", "new/file.txt": b"new\n", "tail": b"no newline\n"},
    )

    patch = render_trees(before, after)
    _run(["patch", "-p1", "--batch", "--silent"], before, stdin=patch)

    assert _tree(before) == _tree(after)


LINES = st.lists(st.sampled_from(["a", "b", "c", "", "\r", "x\x0cy", "é", "a b"]), max_size=12)


@settings(max_examples=30)
@given(old=LINES, new=LINES, old_newline=st.booleans(), new_newline=st.booleans())
def test_any_text_change_round_trips_through_git_apply(
    old: list[str], new: list[str], old_newline: bool, new_newline: bool
) -> None:
    before = "\n".join(old).encode() + (b"\n" if old and old_newline else b"")
    after = "\n".join(new).encode() + (b"\n" if new and new_newline else b"")
    if before == after:
        return
    patch = _render("t.txt", "modified", _file("t.txt", before), _file("t.txt", after))
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "t.txt").write_bytes(before)
        _run(["git", "apply", "--whitespace=nowarn", "-"], Path(scratch), stdin=patch)
        assert Path(scratch, "t.txt").read_bytes() == after


# Names a workspace may give its files: controls, quotes, backslashes, bidi overrides, C1,
# bytes that are not UTF-8 (surrogate-escaped), and a plain non-ASCII name that needs nothing.
UNSAFE_NAMES = [
    "\x1b[2Jclear",
    "bell\x07",
    "tab\tand\nnewline",
    'quote"back\\slash',
    "\u202eevil.txt",
    "c1\u009bcsi",
    "\udcff-not-utf8",
]
TERMINAL_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_a_path_a_terminal_would_obey_is_c_quoted_and_git_apply_restores_its_exact_bytes(
    tmp_path: Path, name: str
) -> None:
    before, after, copy = tmp_path / "before", tmp_path / "after", tmp_path / "copy"
    for root in (before, after, copy):
        root.mkdir()
    raw = os.fsencode(name)
    (after / os.fsdecode(raw)).write_bytes(b"hi\n")

    patch = render_trees(before, after)

    assert not TERMINAL_CONTROLS.search(patch), patch
    patch.encode()  # nothing undecodable is left to send
    _run(["git", "apply", "--whitespace=nowarn", "-"], copy, stdin=patch)
    assert os.listdir(os.fsencode(copy)) == [raw]
    assert (copy / name).read_bytes() == b"hi\n"


def test_a_plain_non_ascii_path_stays_readable() -> None:
    patch = _render("café.txt", "added", None, _file("café.txt", b"x\n"))
    assert patch.startswith("diff --git a/café.txt b/café.txt\n")


@given(st.text(alphabet=st.characters(codec="utf-8") | st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)))
def test_the_agents_patch_reader_unquotes_every_quoted_path_back_to_itself(name: str) -> None:
    header = quoted("b/" + name)
    assert not TERMINAL_CONTROLS.search(header)
    assert _unquote(header) == "b/" + name
