"""`plain_text`: raw terminal output becomes what a person would read on the screen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.protocol.terminal_text import _drawn, plain_text


def test_colour_sequences_are_dropped_and_the_text_kept() -> None:
    raw = "\x1b[0m\x1b[01;34mbin\x1b[0m  \x1b[38;5;208mhot\x1b[m  \x1b[30;42mtmp\x1b[0m\r\n"
    assert plain_text(raw) == "bin  hot  tmp\n"


@pytest.mark.parametrize("terminator", ["\x07", "\x1b\\"])
def test_window_titles_are_dropped_whichever_way_they_end(terminator: str) -> None:
    assert plain_text(f"\x1b]0;root@roost: /workspace{terminator}$ ls\r\n") == "$ ls\n"


def test_bracketed_paste_markers_around_a_prompt_are_dropped() -> None:
    raw = "\x1b[?2004hroot@roost:/workspace# echo hi\r\n\x1b[?2004l\rhi\r\n\x1b[?2004hroot@roost:/workspace# "
    assert plain_text(raw) == "root@roost:/workspace# echo hi\nhi\nroot@roost:/workspace#"


def test_a_progress_bar_redrawn_with_carriage_returns_shows_its_last_state() -> None:
    assert plain_text("  0%\r 50%\r100%\r\ndone\r\n") == "100%\ndone\n"


def test_a_carriage_return_overwrites_only_as_far_as_the_new_text_goes() -> None:
    assert plain_text(b"downloading\rDONE\n") == "DONEloading\n"


def test_erase_to_end_of_line_clears_what_a_shorter_redraw_leaves() -> None:
    assert plain_text("downloading 10%\r\x1b[Kdone\n") == "done\n"
    assert plain_text("abcdef\r\x1b[0Kxy\n") == "xy\n"


def test_erase_whole_line_keeps_the_cursor_column() -> None:
    assert plain_text("abcdef\x1b[2Kxy\n") == "      xy\n"


def test_backspaces_rub_out_what_they_back_over() -> None:
    assert plain_text("abc\b\bXY\n") == "aXY\n"
    assert plain_text("typo\b \b\b \bo!\n") == "tyo!\n"  # what a shell echoes for two rubouts
    assert plain_text("\b\bstart\n") == "start\n"  # never further left than the margin


def test_charset_and_keypad_switches_are_dropped() -> None:
    assert plain_text("\x1b(B\x1b[mplain\x1b=\x1b>\x1b7x\x1b8\n") == "plainx\n"


def test_cursor_movement_and_other_csi_are_dropped() -> None:
    assert plain_text("\x1b[2J\x1b[H\x1b[?25lhello\x1b[?25h\x1b[1A\n") == "hello\n"


def test_tabs_expand_to_the_next_eight_column_stop() -> None:
    assert plain_text("a\tb\tc\n") == "a       b       c\n"


def test_crlf_line_ends_become_newlines_and_trailing_spaces_go() -> None:
    assert plain_text(b"one   \r\ntwo\r\n") == "one\ntwo\n"


def test_invalid_utf8_and_a_lone_escape_do_not_break_it() -> None:
    assert plain_text(b"ok \xff\x1b\n") == "ok \ufffd\n"


def test_text_without_a_final_newline_has_none_added() -> None:
    assert plain_text("$ ") == "$"
    assert plain_text("") == ""


@given(st.text(alphabet=st.sampled_from(list("ab \x1b[];0?mKJH\x07\\\r\n\b\t()=7"))))
def test_no_control_character_but_newline_survives(raw: str) -> None:
    text = plain_text(raw)
    assert not {c for c in text if c < " " and c != "\n"}


def test_escapes_after_the_last_newline_keep_it() -> None:
    assert plain_text(b"line-40\r\n\x1b[?2004h") == "line-40\n"
    assert plain_text(b"a\r\n\x1b[?2004hroot# ") == "a\nroot#"


@given(st.lists(st.sampled_from(["a", "é", " ", "\r\n", "\n", "x y"]), max_size=30).map("".join))
def test_plain_lines_come_out_as_drawing_them_would(text: str) -> None:
    assert plain_text(text) == _drawn(text)
