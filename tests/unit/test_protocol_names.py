"""File names are bytes: their text form is lossless, quoted only when it must be, and what git writes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.protocol.names import NameFormError, as_bytes, from_text, to_text

NAME_BYTES = st.binary(min_size=1, max_size=40).filter(lambda raw: b"\0" not in raw and b"/" not in raw)


@given(NAME_BYTES)
def test_every_name_comes_back_as_its_bytes_through_json(raw: bytes) -> None:
    text = to_text(raw)
    carried = json.loads(json.dumps(text, ensure_ascii=False).encode("utf-8"))  # strict UTF-8 on the way
    assert as_bytes(from_text(carried)) == raw


def _plain(char: str) -> bool:
    """A character text carries as itself: no control, quote, backslash, surrogate or bidi/separator."""
    code = ord(char)
    return not (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0x2028 <= code <= 0x202E
        or char in '"\\\u061c\u200e\u200f\u2066\u2067\u2068\u2069'
    )


@given(st.text(st.characters().filter(_plain), min_size=1, max_size=40))
def test_plain_text_is_written_as_itself(text: str) -> None:
    assert to_text(text) == text and from_text(text) == text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain.txt", "plain.txt"),
        ("café".encode(), "café"),
        (b"caf\xe9", '"caf\\351"'),
        (b'"quoted"', '"\\"quoted\\""'),
        (b"back\\slash", '"back\\\\slash"'),
        (b"tab\tnew\nline", '"tab\\tnew\\nline"'),
        (b"\x1b[2J", '"\\033[2J"'),
        ("\u202etxt.exe".encode(), '"\\342\\200\\256txt.exe"'),
    ],
)
def test_names_that_text_cannot_carry_as_is_are_c_quoted_as_git_quotes_them(raw: bytes, text: str) -> None:
    assert to_text(raw) == text
    assert as_bytes(from_text(text)) == raw


@pytest.mark.parametrize("bad", ['"open', '"a"b"', '"\\q"', '"\\777"', '"\\12"', '"'])
def test_a_quoted_form_that_is_not_well_formed_is_refused(bad: str) -> None:
    with pytest.raises(NameFormError):
        from_text(bad)


def test_git_reads_the_quoted_form_as_the_same_bytes(tmp_path: Path) -> None:
    """git's own quoting (core.quotePath) and ours agree, byte for byte."""
    names = [b"caf\xe9.txt", b"tab\there", b'"q"', b"esc\x1bseq", b"b\\s"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env, timeout=30)
    for raw in names:
        (tmp_path / os.fsdecode(raw)).write_bytes(b"x")
    listed = subprocess.run(
        ["git", "-c", "core.quotePath=true", "ls-files", "--others"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env=env,
        timeout=30,
    ).stdout.decode()
    assert sorted(listed.splitlines()) == sorted(to_text(raw) for raw in names)
