"""An exported patch never carries a symlink that leads out of the tree."""

from __future__ import annotations

from roost.models import DiffEntry
from roost.workspace.export_patch import filter_patch

TEXT = "diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-a\n+b\n"


def link_section(path: str, target: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 120000\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    )


def entry(path: str, kind: str = "file", target: str | None = None, change: str = "added") -> DiffEntry:
    return DiffEntry(path, change, kind, None, None, None, None, False, None, target)


def test_sections_adding_absolute_or_escaping_links_are_dropped_and_listed() -> None:
    patch = (
        TEXT + link_section("abs", "/etc/shadow") + link_section("sub/up", "../../x") + link_section("ok", "notes.txt")
    )
    changes = [
        entry("notes.txt", change="modified"),
        entry("abs", "symlink", "/etc/shadow"),
        entry("sub/up", "symlink", "../../x"),
        entry("ok", "symlink", "notes.txt"),
    ]

    filtered = filter_patch(patch, changes)

    assert filtered.text == TEXT + link_section("ok", "notes.txt")
    assert [(s.path, s.reason) for s in filtered.skipped] == [
        ("abs", "absolute_symlink"),
        ("sub/up", "symlink_escapes"),
    ]


def test_retargeting_an_existing_link_outward_is_dropped_even_without_a_mode_line() -> None:
    section = "diff --git a/l b/l\n--- a/l\n+++ b/l\n@@ -1 +1 @@\n-inside\n+/etc\n"
    filtered = filter_patch(section, [entry("l", "symlink", "/etc", "modified")])
    assert filtered.text == "" and [s.path for s in filtered.skipped] == ["l"]


def test_deleting_a_link_and_plain_text_changes_pass_untouched() -> None:
    deletion = "diff --git a/gone b/gone\ndeleted file mode 120000\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-/etc\n"
    patch = TEXT + deletion
    filtered = filter_patch(patch, [entry("notes.txt", change="modified"), entry("gone", "symlink", None, "deleted")])
    assert (filtered.text, filtered.skipped) == (patch, ())


def test_a_path_with_spaces_is_read_from_its_header() -> None:
    filtered = filter_patch(link_section("a b/c d", "/x"), [])
    assert [s.path for s in filtered.skipped] == ["a b/c d"]


def retarget_section(path: str, old: str, new: str, index: str = "") -> str:
    """A link's retarget as a patch carries it: no mode line (git keeps the checkout's), maybe an index line."""
    return (
        f"diff --git a/{path} b/{path}\n{index}--- a/{path}\n+++ b/{path}\n"
        f"@@ -1 +1 @@\n-{old}\n\\ No newline at end of file\n+{new}\n\\ No newline at end of file\n"
    )


def test_the_patch_text_alone_decides_so_a_lying_change_list_cannot_hide_a_link() -> None:
    """The agent that wrote the patch may leave the path out of its change list (or be honest
    and name it by a quoted path): the sections are judged from the text."""
    quoted = (
        'diff --git "a/l\\033" "b/l\\033"\nnew file mode 120000\n--- /dev/null\n+++ "b/l\\033"\n'
        "@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n"
    )
    patch = (
        TEXT
        + retarget_section("plain", "notes.txt", "/etc/shadow")
        + retarget_section("indexed", "a", "../../x", index="index 1234567..89abcde 120000\n")
        + quoted
    )

    filtered = filter_patch(patch, [entry("notes.txt", change="modified")])

    assert filtered.text == TEXT
    assert [s.path for s in filtered.skipped] == ["plain", "indexed", "l\x1b"]


def test_a_one_line_file_change_that_stays_inside_passes() -> None:
    section = retarget_section("VERSION", "1.0", "1.1")
    assert filter_patch(section, []).text == section
