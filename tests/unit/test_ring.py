"""The shell output ring: absolute cursors, bounded memory, and waits for data or for a change."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.agent.shells.ring import ByteRing


@pytest.fixture
def ring() -> Iterator[ByteRing]:
    made = ByteRing(8)
    yield made
    made.close()


def test_a_read_returns_what_was_written_and_where_to_continue(ring: ByteRing) -> None:
    ring.write(b"abc")
    ring.write(b"de")
    first = ring.read(0, 4)
    assert (first.data, first.cursor, first.next_cursor, first.dropped) == (b"abcd", 0, 4, 0)
    rest = ring.read(first.next_cursor, 100)
    assert (rest.data, rest.cursor, rest.next_cursor, rest.dropped) == (b"e", 4, 5, 0)
    assert ring.read(rest.next_cursor, 100).data == b""


def test_writes_wrap_around_and_keep_the_newest_bytes_in_order(ring: ByteRing) -> None:
    ring.write(b"012345")
    ring.write(b"6789AB")  # wraps past the end of the buffer
    assert (ring.start, ring.end) == (4, 12)
    chunk = ring.read(4, 100)
    assert (chunk.data, chunk.cursor, chunk.next_cursor, chunk.dropped) == (b"456789AB", 4, 12, 0)
    assert ring.read(10, 100).data == b"AB"


def test_a_write_larger_than_the_capacity_keeps_only_its_tail(ring: ByteRing) -> None:
    ring.write(b"xy")
    ring.write(bytes(range(65, 65 + 20)))  # "A".."T"
    assert ring.end == 22
    assert ring.read(14, 100).data == b"MNOPQRST"
    ring.write(b"uv")  # and the ring goes on wrapping correctly after it
    assert ring.read(16, 100).data == b"OPQRSTuv"


def test_a_cursor_before_the_start_reports_what_was_dropped(ring: ByteRing) -> None:
    ring.write(b"0123456789ABCDEF")
    chunk = ring.read(3, 4)
    assert chunk.dropped == 5  # bytes 3..7 are gone
    assert (chunk.cursor, chunk.data, chunk.next_cursor) == (8, b"89AB", 12)
    assert ring.read(chunk.next_cursor, 100).dropped == 0


def test_a_cursor_past_the_end_reads_nothing_from_the_end(ring: ByteRing) -> None:
    ring.write(b"abc")
    chunk = ring.read(50, 10)
    assert (chunk.data, chunk.cursor, chunk.next_cursor, chunk.dropped) == (b"", 3, 3, 0)


def test_a_ring_takes_memory_as_output_arrives_not_up_front() -> None:
    tracemalloc.start()
    try:
        rings = [ByteRing(4 * 1024 * 1024) for _ in range(50)]  # fifty idle shells' worth
        for ring in rings:
            ring.write(b"$ ")
        idle_bytes, _ = tracemalloc.get_traced_memory()
        rings[0].write(b"x" * (5 * 1024 * 1024))  # once it wraps, one ring holds its full capacity
        full_bytes, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert idle_bytes < 1024 * 1024
    assert full_bytes - idle_bytes >= 4 * 1024 * 1024
    assert rings[0].read(0, 10).dropped == 5 * 1024 * 1024 + 2 - 4 * 1024 * 1024


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ByteRing(0)


@given(
    capacity=st.integers(min_value=1, max_value=32),
    writes=st.lists(st.binary(max_size=70), max_size=12),
    cursor=st.integers(min_value=0, max_value=400),
)
def test_any_sequence_of_writes_reads_back_as_the_tail_of_their_concatenation(
    capacity: int, writes: list[bytes], cursor: int
) -> None:
    ring = ByteRing(capacity)
    for data in writes:
        ring.write(data)
    everything = b"".join(writes)
    total = len(everything)
    asked = min(cursor, total)  # a cursor past the end means "from the end"
    kept_from = max(0, total - capacity)
    chunk = ring.read(cursor, 1000)
    assert chunk.dropped == max(0, kept_from - asked)
    assert (chunk.cursor, chunk.next_cursor) == (max(asked, kept_from), total)
    assert chunk.data == everything[chunk.cursor :]


def test_wait_beyond_is_true_at_once_when_data_is_already_there(ring: ByteRing) -> None:
    ring.write(b"ab")
    assert ring.wait_beyond(1, timeout_s=5.0) is True


def test_wait_beyond_is_woken_by_a_write_from_another_thread(ring: ByteRing) -> None:
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(ring.wait_beyond(0, timeout_s=10.0)))
    waiter.start()
    started = time.monotonic()
    ring.write(b"x")
    waiter.join(5.0)
    assert woke == [True]
    assert time.monotonic() - started < 5.0


def test_wait_beyond_is_false_after_its_timeout_without_data(ring: ByteRing) -> None:
    started = time.monotonic()
    assert ring.wait_beyond(0, timeout_s=0.05) is False
    assert time.monotonic() - started >= 0.05


def test_wait_beyond_is_false_at_once_when_the_ring_closes_without_more_data(ring: ByteRing) -> None:
    ring.write(b"ab")
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(ring.wait_beyond(2, timeout_s=10.0)))
    waiter.start()
    ring.close()
    waiter.join(5.0)
    assert outcome == [False]
    assert ring.closed
