"""Human CLI output never passes a control character through to the terminal; --json stays exact."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.cli.output import emit_error, emit_json, shown, table
from roost.errors import NotFound

# What a terminal acts on or what reorders text: C0 (tab and line feed too), DEL, C1,
# lone surrogates, line/paragraph separators, bidi marks, overrides and isolates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("\x1b[2Jclear", "\\x1b[2Jclear"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("csi\u009b31m", "csi\\x9b31m"),
        ("\u202eexe.txt", "\\u202eexe.txt"),
        ("\u2066iso\u2069", "\\u2066iso\\u2069"),
        ("byte\udcff", "byte\\xff"),
        ("tab\tnl\n", "tab\\x09nl\\x0a"),
        ("café 日本", "café 日本"),
    ],
)
def test_shown_escapes_what_a_terminal_would_obey_and_keeps_the_rest(raw: str, escaped: str) -> None:
    assert shown(raw) == escaped


@given(st.text(alphabet=st.characters(codec="utf-8") | st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)))
def test_shown_text_never_holds_a_control_and_always_encodes(text: str) -> None:
    safe = shown(text)
    assert not UNSAFE.search(safe)
    safe.encode("utf-8")


def test_shown_keeps_line_feeds_and_tabs_only_when_asked() -> None:
    assert shown("a\n\tb\x1b", lines=True) == "a\n\tb\\x1b"


def test_every_table_cell_is_escaped_and_columns_line_up_on_the_escaped_text() -> None:
    lines = table([["\x1b[2J", "x"], ["ok", "\u202ey"]], ["NAME", "NOTE"]).splitlines()
    assert lines == ["NAME     NOTE", "\\x1b[2J  x", "ok       \\u202ey"]


def test_a_human_error_is_escaped_but_the_json_error_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    error = NotFound("no file \x1b[2Jx", code="path_not_found", hint="look \u202eright")
    emit_error(error, as_json=False)
    human = capsys.readouterr().err
    assert not UNSAFE.search(human.replace("\n", ""))
    assert "no file \\x1b[2Jx" in human

    emit_error(error, as_json=True)
    assert json.loads(capsys.readouterr().err)["error"]["message"] == "no file \x1b[2Jx"


def test_json_output_keeps_names_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json({"path": "/workspace/\x1b[2J\udcff"})
    assert json.loads(capsys.readouterr().out) == {"path": "/workspace/\x1b[2J\udcff"}
