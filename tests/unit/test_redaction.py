"""Redaction: a value and its encodings become [redacted:NAME], in whole outputs and in streams split anywhere."""

from __future__ import annotations

import base64
import time
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from roost.protocol.redaction import Redactor

VALUE = b"s3cr3t/Val+ue?&=x"
REDACTOR = Redactor({"TOKEN": VALUE})


def test_the_value_is_replaced_by_its_name() -> None:
    assert REDACTOR.redact(b"key=" + VALUE + b"\n") == b"key=[redacted:TOKEN]\n"
    assert REDACTOR.redact_text("key=" + VALUE.decode()) == "key=[redacted:TOKEN]"


def test_url_encoded_forms_are_replaced() -> None:
    for quoted in (urllib.parse.quote(VALUE, safe=""), urllib.parse.quote_plus(VALUE)):
        assert REDACTOR.redact_text(f"?q={quoted}&x=1") == "?q=[redacted:TOKEN]&x=1"


def test_base64_forms_are_caught_at_every_alignment_in_both_alphabets() -> None:
    for before in (b"", b"a", b"ab", b"abc", b"abcd"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            for after in (b"", b"z", b"zz"):
                encoded = encode(before + VALUE + after)
                redacted = REDACTOR.redact(b"Basic " + encoded)
                assert b"[redacted:TOKEN]" in redacted, (before, after, encoded)


def test_the_whole_padded_base64_of_the_value_leaves_nothing_of_it() -> None:
    assert REDACTOR.redact(base64.b64encode(VALUE)) == b"[redacted:TOKEN]"
    assert REDACTOR.redact(base64.b64encode(VALUE).rstrip(b"=")) == b"[redacted:TOKEN]"


def test_text_without_secrets_passes_unchanged_and_no_secrets_redact_nothing() -> None:
    assert REDACTOR.redact(b"nothing here") == b"nothing here"
    empty = Redactor({})
    assert not empty.active and empty.redact(VALUE) == VALUE


def test_the_repr_names_secrets_and_never_shows_values() -> None:
    assert "TOKEN" in repr(REDACTOR) and VALUE.decode() not in repr(REDACTOR)


@given(
    parts=st.lists(st.sampled_from([b"abc ", VALUE, base64.b64encode(VALUE), b"\n", b"s3c"]), max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=60),
)
def test_a_stream_split_anywhere_is_redacted_as_the_whole_output(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    stream = REDACTOR.stream()
    out, pos, turn = [], 0, 0
    while pos < len(data):
        size = cuts[turn % len(cuts)]
        out.append(stream.feed(data[pos : pos + size]))
        pos, turn = pos + size, turn + 1
    out.append(stream.finish())
    assert b"".join(out) == REDACTOR.redact(data)
    assert VALUE not in b"".join(out)


def test_a_stream_passes_on_all_but_what_could_start_a_value() -> None:
    stream = REDACTOR.stream()
    head = b"x" * 100
    passed = stream.feed(head + VALUE[:5])
    assert passed.startswith(head[: 100 + 5 - stream.hold]) and VALUE[:5] not in passed
    assert passed + stream.feed(VALUE[5:] + b" end") + stream.finish() == head + b"[redacted:TOKEN] end"


def test_a_channel_stream_lets_out_what_it_held_once_quiet_and_all_of_it_at_the_end() -> None:
    from roost.workspace.redacted_streams import ChannelRedactor

    got: list[tuple[str, bytes]] = []
    channels = ChannelRedactor(REDACTOR, lambda channel, data: got.append((channel, data)), idle_flush=0.05)
    channels.feed("stdout", b"prompt> ")
    deadline = time.monotonic() + 5
    while b"".join(data for _, data in got) != b"prompt> " and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"".join(data for _, data in got) == b"prompt> "  # no more output came: the held tail went out
    channels.feed("stdout", VALUE[:4])
    channels.feed("stderr", b"err")
    channels.feed("stdout", VALUE[4:] + b"\n")
    channels.finish()
    stdout = b"".join(data for channel, data in got if channel == "stdout")
    assert stdout == b"prompt> [redacted:TOKEN]\n"
    assert b"".join(data for channel, data in got if channel == "stderr") == b"err"


def test_patch_pieces_are_redacted_as_one_text_per_run() -> None:
    from roost.workspace.redacted_streams import redacted_parts

    text = "+key=" + VALUE.decode() + "\n"
    parts = [1, text[:7], text[7:12], text[12:], 2, "+plain\n"]
    out = list(redacted_parts(REDACTOR, iter(parts)))
    assert [part for part in out if not isinstance(part, str)] == [1, 2]
    assert "".join(part for part in out if isinstance(part, str)) == "+key=[redacted:TOKEN]\n+plain\n"
