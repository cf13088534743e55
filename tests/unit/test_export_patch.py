"""An exported patch never carries a symlink that leads out of the tree, however its text is cut up."""

from __future__ import annotations

import os

import pytest

from roost.agent.snapshots.diff_text import patch_for
from roost.agent.snapshots.trees import SYMLINK, Entry
from roost.models import DiffEntry, SkippedEntry
from roost.workspace.export_patch import MAX_LINK_SECTION, PatchFilter

TEXT = "diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-a\n+b\n"


def link_section(path: str, target: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 120000\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    )


def entry(path: str, kind: str = "file", target: str | None = None, change: str = "added") -> DiffEntry:
    return DiffEntry(path, change, kind, None, None, None, None, False, None, target)


def run(parts: list[DiffEntry | str], piece: int | None = None) -> tuple[str, list[SkippedEntry]]:
    """Feed entries and text as a diff streams them; text cut into `piece`-character bits when given."""
    out: list[str] = []
    crossing = PatchFilter(out.append)
    for part in parts:
        if isinstance(part, DiffEntry):
            crossing.note(part)
        elif piece is None:
            crossing.feed(part)
        else:
            for start in range(0, len(part), piece):
                crossing.feed(part[start : start + piece])
    crossing.finish()
    return "".join(out), crossing.skipped


@pytest.mark.parametrize("piece", [None, 1, 7, 4096])
def test_sections_adding_absolute_or_escaping_links_are_dropped_and_listed(piece: int | None) -> None:
    parts: list[DiffEntry | str] = [
        entry("notes.txt", change="modified"),
        TEXT,
        entry("abs", "symlink", "/etc/shadow"),
        link_section("abs", "/etc/shadow"),
        entry("sub/up", "symlink", "../../x"),
        link_section("sub/up", "../../x"),
        entry("ok", "symlink", "notes.txt"),
        link_section("ok", "notes.txt"),
    ]

    text, skipped = run(parts, piece)

    assert text == TEXT + link_section("ok", "notes.txt")
    assert [(s.path, s.reason) for s in skipped] == [("abs", "absolute_symlink"), ("sub/up", "symlink_escapes")]


def test_retargeting_an_existing_link_outward_is_dropped_even_without_a_mode_line() -> None:
    section = "diff --git a/l b/l\n--- a/l\n+++ b/l\n@@ -1 +1 @@\n-inside\n+/etc\n"
    text, skipped = run([entry("l", "symlink", "/etc", "modified"), section])
    assert text == "" and [s.path for s in skipped] == ["l"]


def test_a_link_section_the_entries_do_not_mention_is_judged_by_its_mode_line() -> None:
    text, skipped = run([entry("notes.txt", change="modified"), TEXT + link_section("sneaky", "/root")])
    assert text == TEXT and [s.path for s in skipped] == ["sneaky"]


@pytest.mark.parametrize("piece", [None, 3])
def test_deleting_a_link_and_plain_text_changes_pass_untouched(piece: int | None) -> None:
    deletion = "diff --git a/gone b/gone\ndeleted file mode 120000\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-/etc\n"
    text, skipped = run(
        [entry("notes.txt", change="modified"), TEXT, entry("gone", "symlink", None, "deleted"), deletion], piece
    )
    assert (text, skipped) == (TEXT + deletion, [])


def test_a_path_with_spaces_is_read_from_its_header() -> None:
    _, skipped = run([link_section("a b/c d", "/x")])
    assert [s.path for s in skipped] == ["a b/c d"]


def test_a_quoted_path_that_is_not_utf8_is_read_as_its_bytes() -> None:
    name = os.fsdecode(b"caf\xe9")
    section = (
        'diff --git "a/caf\\351" "b/caf\\351"\nnew file mode 120000\n--- /dev/null\n+++ "b/caf\\351"\n'
        "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n"
    )
    _, skipped = run([entry(name, "symlink", "/etc/passwd"), section], 5)
    assert [os.fsencode(s.path) for s in skipped] == [b"caf\xe9"]


def test_a_link_section_too_large_to_be_a_link_is_dropped_without_holding_it_all() -> None:
    body = "".join(f"+{'x' * 99}\n" for _ in range(MAX_LINK_SECTION // 50))
    section = f"diff --git a/big b/big\nnew file mode 120000\n--- /dev/null\n+++ b/big\n@@ -0,0 +1 @@\n{body}"
    text, skipped = run([entry("big", "symlink", "x"), section, entry("notes.txt", change="modified"), TEXT], 1000)
    assert text == TEXT
    assert [(s.path, s.reason) for s in skipped] == [("big", "symlink_escapes")]


def test_a_huge_text_section_streams_through_in_runs() -> None:
    line = "+" + "y" * 200 + "\n"
    section = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1,5000 @@\n" + line * 5000
    writes: list[str] = []
    crossing = PatchFilter(writes.append)
    crossing.note(entry("f"))
    for start in range(0, len(section), 65536):
        crossing.feed(section[start : start + 65536])
    crossing.finish()
    assert "".join(writes) == section
    assert len(writes) < 100, "text that passes is written in runs, not line by line"


def retarget_section(path: str, old: str, new: str, index: str = "") -> str:
    """A link's retarget as a patch carries it: no mode line (git keeps the checkout's), maybe an index line."""
    return (
        f"diff --git a/{path} b/{path}\n{index}--- a/{path}\n+++ b/{path}\n"
        f"@@ -1 +1 @@\n-{old}\n\\ No newline at end of file\n+{new}\n\\ No newline at end of file\n"
    )


@pytest.mark.parametrize("piece", [None, 1, 9])
def test_the_patch_text_alone_decides_so_a_lying_change_list_cannot_hide_a_link(piece: int | None) -> None:
    """The agent that wrote the patch may leave the path out of its change list (or be honest
    and name it by a quoted path): the sections are judged from the text."""
    quoted = (
        'diff --git "a/l\\033" "b/l\\033"\nnew file mode 120000\n--- /dev/null\n+++ "b/l\\033"\n'
        "@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n"
    )
    lying = [
        entry("notes.txt", change="modified"),
        TEXT,
        entry("plain", change="modified"),
        retarget_section("plain", "notes.txt", "/etc/shadow"),
        entry("indexed", change="modified"),
        retarget_section("indexed", "a", "../../x", index="index 1234567..89abcde 120000\n"),
        quoted,
    ]

    text, skipped = run(lying, piece)

    assert text == TEXT
    assert [s.path for s in skipped] == ["plain", "indexed", "l\x1b"]


@pytest.mark.parametrize("piece", [None, 2])
def test_a_one_line_file_change_that_stays_inside_passes(piece: int | None) -> None:
    section = retarget_section("VERSION", "1.0", "1.1")
    assert run([entry("VERSION", change="modified"), section, TEXT], piece) == (section + TEXT, [])


def test_a_mode_less_change_is_released_as_soon_as_it_cannot_be_a_retarget() -> None:
    """A modification with context lines, or more than one added line, is no link: it streams on
    (written before the section ends), and a one-line file longer than any link target passes too."""
    writes: list[str] = []
    crossing = PatchFilter(writes.append)
    crossing.note(entry("f", change="modified"))
    crossing.feed("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n keep\n")
    assert "".join(writes).endswith(" keep\n"), "the section was held although a context line rules out a link"
    crossing.feed("-old\n+new\n")
    crossing.finish()
    assert crossing.skipped == []

    long_line = retarget_section("min.js", "a" * MAX_LINK_SECTION, "/" + "b" * MAX_LINK_SECTION)
    assert run([entry("min.js", change="modified"), long_line], 4096) == (long_line, [])


@pytest.mark.parametrize(("target", "skipped"), [("/etc/shadow", ["l"]), ("../../x", ["l"]), ("sibling", [])])
def test_the_agents_own_retarget_text_is_judged_with_no_entry_to_say_it_is_a_link(
    target: str, skipped: list[str]
) -> None:
    """What the agent writes for a retarget (`index .. 120000`, no mode line), cut into small
    pieces, with the entry that should announce it missing: the text alone decides."""
    old, new = Entry("l", SYMLINK, 0o777, target="inside"), Entry("l", SYMLINK, 0o777, target=target)
    section = "".join(patch_for("l", "modified", old, new, lambda e: (e.target or "").encode()))
    assert " 120000\n" in section

    text, dropped = run([section], 3)

    assert [s.path for s in dropped] == skipped and text == ("" if skipped else section)
