"""Capping what a model sees: head + tail, an honest marker, nothing split mid-character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.errors import InvalidArgument
from roost.mcp.output_caps import (
    DEFAULT_MODEL_CHARS,
    MAX_MODEL_CHARS,
    MIN_MODEL_CHARS,
    cap_text,
    exec_view,
    model_chars,
    timed_out_note,
)
from roost.models import ExecResult


def _exec(stdout: str = "", stderr: str = "", *, timed_out: bool = False, exec_id: int | None = 7) -> ExecResult:
    return ExecResult(
        exit_code=None if timed_out else 0,
        signal="SIGKILL" if timed_out else None,
        timed_out=timed_out,
        duration_ms=1.0,
        stdout=stdout,
        stderr=stderr,
        stdout_bytes=len(stdout.encode()),
        stderr_bytes=len(stderr.encode()),
        stdout_truncated=False,
        stderr_truncated=False,
        exec_id=exec_id,
    )


def test_text_within_the_limit_is_returned_unchanged() -> None:
    capped = cap_text("hello\n", 16)
    assert capped.text == "hello\n"
    assert not capped.truncated


def test_long_text_keeps_head_and_tail_and_names_the_omitted_bytes() -> None:
    text = "a" * 100 + "b" * 1000 + "c" * 100
    calls: list[tuple[int, int]] = []

    def resume(offset: int, omitted: int) -> str:
        calls.append((offset, omitted))
        return f"read from offset={offset}"

    capped = cap_text(text, 200, resume)

    head, marker, tail = capped.text.split("\n")
    assert head == "a" * 100
    assert tail == "c" * 100
    assert marker == "[... 1000 bytes omitted; read from offset=100]"
    assert capped.truncated
    assert (capped.omitted_bytes, capped.resume_offset) == (1000, 100)
    assert calls == [(100, 1000)]


def test_marker_without_a_resume_hint_only_counts_bytes() -> None:
    capped = cap_text("x" * 50, 10)
    assert "[... 40 bytes omitted]" in capped.text


@given(text=st.text(max_size=400), limit=st.integers(min_value=0, max_value=300))
def test_head_omitted_and_tail_add_up_to_the_original_bytes(text: str, limit: int) -> None:
    capped = cap_text(text, limit)
    data = text.encode()
    if not capped.truncated:
        assert capped.text == text
        return
    # Strict decoding: both cuts must fall on character boundaries.
    head = data[: capped.resume_offset].decode()
    tail = data[capped.resume_offset + capped.omitted_bytes :].decode()
    assert capped.text == f"{head}\n[... {capped.omitted_bytes} bytes omitted]\n{tail}"
    assert len(head.encode()) + len(tail.encode()) <= limit


def test_multibyte_characters_are_never_split() -> None:
    capped = cap_text("é" * 100, 51)
    assert "\ufffd" not in capped.text
    assert capped.resume_offset % 2 == 0


def test_exec_view_caps_each_stream_and_flags_it_for_the_model() -> None:
    result = _exec(stdout="o" * 5000, stderr="short")
    view = exec_view(result, 1024, lambda stream: lambda offset, omitted: f"{stream}@{offset}")

    assert view["stdout_truncated_for_model"] is True
    assert view["stdout_omitted_bytes"] == 5000 - 1024
    assert "stdout@512]" in view["stdout"]
    assert view["stderr"] == "short"
    assert view["stderr_truncated_for_model"] is False
    assert view["exec_id"] == 7
    assert view["stdout_bytes"] == 5000


def test_model_chars_defaults_and_refuses_values_out_of_bounds() -> None:
    assert model_chars(None) == DEFAULT_MODEL_CHARS
    assert model_chars(MIN_MODEL_CHARS) == MIN_MODEL_CHARS
    for bad in (MIN_MODEL_CHARS - 1, MAX_MODEL_CHARS + 1):
        with pytest.raises(InvalidArgument) as info:
            model_chars(bad)
        assert info.value.code == "invalid_argument"


def test_timed_out_note_speaks_only_for_timed_out_commands() -> None:
    assert timed_out_note(_exec(), 5.0) is None
    note = timed_out_note(_exec(timed_out=True), 2.5)
    assert note is not None
    assert "timed out after 2.5s" in note
