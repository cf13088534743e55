"""An exported patch never carries a symlink that leads out of the tree, however its text is cut up."""

from __future__ import annotations

import os

import pytest

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
