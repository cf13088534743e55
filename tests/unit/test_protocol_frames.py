"""Frame encoding and decoding, and version negotiation, as properties over arbitrary input."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.protocol import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    PROTOCOL_VERSIONS,
    Frame,
    FrameDecoder,
    FrameError,
    Kind,
    choose_version,
    encode_frame,
    read_frame,
    write_frame,
)
from roost.protocol.frames import FRAME_VERSION, MAGIC, PREFIX, encode_header

# -- strategies ----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
headers = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
bodies = st.one_of(st.just(b""), st.binary(max_size=2048))
kinds = st.sampled_from(list(Kind))
frames = st.builds(Frame, kinds, headers, bodies)
# For properties that feed a stream piece by piece: small frames, many boundaries.
small_frames = st.builds(
    Frame, kinds, st.dictionaries(st.text(max_size=6), json_scalars, max_size=3), st.binary(max_size=64)
)


class ChunkedStream:
    """A `recv_into` source handing out `data` in pieces of the given sizes (then 1 byte at a time)."""

    def __init__(self, data: bytes, sizes: list[int] | None = None) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._sizes = list(sizes or [])

    def recv_into(self, view: memoryview) -> int:
        if self._pos >= len(self._data):
            return 0
        want = self._sizes.pop(0) if self._sizes else len(view)
        n = max(1, min(want, len(view), len(self._data) - self._pos))
        view[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    @property
    def consumed(self) -> int:
        return self._pos


def read_all(stream: ChunkedStream) -> list[Frame]:
    out = []
    while (frame := read_frame(stream.recv_into)) is not None:
        out.append(frame)
    return out


def prefix(kind: int = int(Kind.REQUEST), header_len: int = 2, body_len: int = 0, magic: bytes = MAGIC) -> bytes:
    return PREFIX.pack(magic, FRAME_VERSION, kind, header_len, body_len)


# -- round trips -----------------------------------------------------------------


@given(frames)
def test_encoded_frame_decodes_to_the_same_frame(frame: Frame) -> None:
    data = encode_frame(frame)
    assert read_frame(ChunkedStream(data).recv_into) == frame
    assert FrameDecoder().feed(data) == [frame]


@given(frames, st.lists(st.integers(min_value=1, max_value=64), max_size=50))
def test_read_frame_reassembles_short_reads(frame: Frame, sizes: list[int]) -> None:
    stream = ChunkedStream(encode_frame(frame), sizes)
    assert read_all(stream) == [frame]


@given(kinds, headers, st.binary(max_size=200_000))
def test_write_frame_sends_the_same_bytes_as_encode_frame(kind: Kind, header: dict[str, Any], body: bytes) -> None:
    sent: list[bytes] = []
    write_frame(sent.append, kind, header, body)
    assert b"".join(sent) == encode_frame(Frame(kind, header, body))


@given(st.lists(small_frames, max_size=8), st.data())
def test_decoder_yields_the_same_frames_however_the_stream_is_split(
    frames_in: list[Frame], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(f) for f in frames_in)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20)))
    decoder = FrameDecoder()
    out: list[Frame] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert out == frames_in
    assert decoder.pending == 0


@given(st.lists(small_frames, min_size=1, max_size=5))
def test_decoder_fed_one_byte_at_a_time_yields_every_frame(frames_in: list[Frame]) -> None:
    stream = b"".join(encode_frame(f) for f in frames_in)
    decoder = FrameDecoder()
    out = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i : i + 1])]
    assert out == frames_in


@given(st.binary(min_size=1, max_size=40))
def test_a_header_naming_a_file_that_is_not_utf8_round_trips_byte_for_byte(raw_name: bytes) -> None:
    # The agent holds such names surrogate-escaped (os.fsdecode); they must reach the host intact.
    name = "/workspace/" + raw_name.decode("utf-8", "surrogateescape")
    frame = Frame(Kind.RESPONSE, {"id": 1, "result": {"entries": [{"path": name}]}})
    decoded = FrameDecoder().feed(encode_frame(frame))
    assert decoded == [frame]
    assert os.fsencode(decoded[0].header["result"]["entries"][0]["path"]) == b"/workspace/" + raw_name


def test_frame_request_id_is_zero_unless_an_integer() -> None:
    assert Frame(Kind.REQUEST, {"id": 7}).request_id == 7
    assert Frame(Kind.REQUEST, {"id": "7"}).request_id == 0
    assert Frame(Kind.REQUEST, {}).request_id == 0


# -- truncation ------------------------------------------------------------------


def test_empty_stream_reads_as_a_clean_end() -> None:
    assert read_frame(ChunkedStream(b"").recv_into) is None


@given(st.lists(small_frames, min_size=1, max_size=5), st.data())
def test_truncated_stream_raises_unless_cut_at_a_frame_boundary(frames_in: list[Frame], data: st.DataObject) -> None:
    encoded = [encode_frame(f) for f in frames_in]
    stream = b"".join(encoded)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream) - 1))
    boundaries = {sum(len(e) for e in encoded[:i]) for i in range(len(encoded) + 1)}
    complete = max(i for i in range(len(encoded) + 1) if sum(len(e) for e in encoded[:i]) <= cut)
    source = ChunkedStream(stream[:cut])
    got: list[Frame] = []
    if cut in boundaries:
        got = read_all(source)
    else:
        with pytest.raises(FrameError) as info:
            while (frame := read_frame(source.recv_into)) is not None:
                got.append(frame)
        assert info.value.code == "protocol_error"
    assert got == frames_in[:complete]


# -- limits ----------------------------------------------------------------------


@given(
    st.one_of(
        st.tuples(st.integers(MAX_HEADER_BYTES + 1, 2**32 - 1), st.integers(0, MAX_BODY_BYTES)),
        st.tuples(st.integers(1, MAX_HEADER_BYTES), st.integers(MAX_BODY_BYTES + 1, 2**32 - 1)),
    )
)
def test_oversized_lengths_are_refused_from_the_prefix_alone(lengths: tuple[int, int]) -> None:
    header_len, body_len = lengths
    raw = prefix(header_len=header_len, body_len=body_len)
    source = ChunkedStream(raw)  # nothing follows the prefix: reading on would fail differently
    tracemalloc.start()
    try:
        with pytest.raises(FrameError) as info:
            read_frame(source.recv_into)
        with pytest.raises(FrameError) as decoder_info:
            FrameDecoder().feed(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == "frame_too_large"
    assert decoder_info.value.code == "frame_too_large"
    assert source.consumed == PREFIX.size
    assert peak < 1024 * 1024


def test_lengths_exactly_at_the_limits_are_accepted_by_the_prefix() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(prefix(header_len=MAX_HEADER_BYTES, body_len=MAX_BODY_BYTES)) == []
    assert decoder.pending == PREFIX.size


def test_encoding_a_header_above_the_limit_is_refused() -> None:
    with pytest.raises(FrameError) as info:
        encode_frame(Frame(Kind.REQUEST, {"pad": "x" * MAX_HEADER_BYTES}))
    assert info.value.code == "frame_too_large"


def test_encoding_a_body_above_the_limit_is_refused_before_it_is_built() -> None:
    with pytest.raises(FrameError) as info:
        encode_header(Kind.DATA, {"id": 1}, MAX_BODY_BYTES + 1)
    assert info.value.code == "frame_too_large"
    assert len(encode_header(Kind.DATA, {"id": 1}, MAX_BODY_BYTES)) > PREFIX.size


# -- garbage ---------------------------------------------------------------------


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


valid_kinds = {int(k) for k in Kind}
garbage = st.one_of(
    # wrong magic
    st.builds(
        lambda magic, rest: magic + rest,
        st.binary(min_size=2, max_size=2).filter(lambda m: m != MAGIC),
        st.binary(min_size=PREFIX.size - 2, max_size=64),
    ),
    # unknown kind
    st.builds(
        lambda kind: prefix(kind=kind) + b"{}",
        st.integers(0, 255).filter(lambda k: k not in valid_kinds),
    ),
    # zero-length header
    st.just(prefix(header_len=0)),
    # header bytes that are not JSON
    st.binary(min_size=1, max_size=64).filter(_not_json).map(lambda raw: prefix(header_len=len(raw)) + raw),
    # JSON that is not an object
    st.one_of(json_scalars, st.lists(json_scalars, max_size=3))
    .map(lambda v: json.dumps(v).encode())
    .map(lambda raw: prefix(header_len=len(raw)) + raw),
)


@given(garbage, frames)
def test_garbage_is_a_protocol_error_and_poisons_the_decoder(raw: bytes, good: Frame) -> None:
    with pytest.raises(FrameError) as info:
        read_frame(ChunkedStream(raw).recv_into)
    assert info.value.code == "protocol_error"

    decoder = FrameDecoder()
    with pytest.raises(FrameError) as decoder_info:
        decoder.feed(raw)
    assert decoder_info.value.code == "protocol_error"
    with pytest.raises(FrameError):  # a valid frame after the garbage is not trusted
        decoder.feed(encode_frame(good))


@given(st.binary(min_size=PREFIX.size, max_size=200))
def test_arbitrary_bytes_either_decode_or_raise_frame_error(raw: bytes) -> None:
    try:
        FrameDecoder().feed(raw)
    except FrameError as exc:
        assert exc.code in ("protocol_error", "frame_too_large", "unsupported_version")


@given(frames)
def test_decoder_poisoned_after_valid_frames_keeps_raising(frame: Frame) -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(frame)) == [frame]
    with pytest.raises(FrameError):
        decoder.feed(b"XX" + bytes(PREFIX.size))
    with pytest.raises(FrameError):
        decoder.feed(encode_frame(frame))


@given(st.integers(0, 255).filter(lambda v: v != FRAME_VERSION))
def test_unknown_frame_format_version_is_refused(version: int) -> None:
    raw = struct.pack(">2sBBII", MAGIC, version, int(Kind.HELLO), 2, 0) + b"{}"
    with pytest.raises(FrameError) as info:
        read_frame(ChunkedStream(raw).recv_into)
    assert info.value.code == "unsupported_version"


# -- version negotiation -----------------------------------------------------------


def test_choose_version_picks_the_highest_common_version() -> None:
    assert choose_version(list(PROTOCOL_VERSIONS)) == max(PROTOCOL_VERSIONS)
    assert choose_version([*PROTOCOL_VERSIONS, 99, 1000]) == max(PROTOCOL_VERSIONS)


@pytest.mark.parametrize("offered", [[99], [], [0, -1], "1", 1, None, {"1": 1}, ["1"], [True], [1.0]])
def test_choose_version_finds_nothing_without_a_common_integer_version(offered: object) -> None:
    assert choose_version(offered) is None


@given(st.lists(st.one_of(st.integers(-5, 300), st.booleans(), st.text(max_size=3), st.floats()), max_size=10))
def test_choose_version_only_ever_returns_an_offered_supported_int(offered: list[object]) -> None:
    chosen = choose_version(offered)
    common = [v for v in offered if type(v) is int and v in PROTOCOL_VERSIONS]
    assert chosen == (max(common) if common else None)
    assert chosen is None or type(chosen) is int  # never a bool: JSON true is not version 1
