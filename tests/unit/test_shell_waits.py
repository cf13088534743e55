"""What a shell read waits for in the agent (quiet, a pattern, a command's end) and how prompt marks are found."""

from __future__ import annotations

import re
import threading
import time

import pytest

from helpers import wait_until
from roost.agent.shells.commands import CommandState
from roost.agent.shells.prompt_marks import MarkFilter, prompt_hook
from roost.agent.shells.ring import ByteRing, RingRead
from roost.agent.shells.waits import CommandDone, Condition, PatternSeen, Quiet, wait_for
from roost.protocol import OpError

NONCE = "0123456789abcdef"


class Chatter:
    """A writer thread that keeps producing output every `every_s` until stopped."""

    def __init__(self, ring: ByteRing, every_s: float, data: bytes = b".") -> None:
        self.ring = ring
        self.every_s = every_s
        self.data = data
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chatter", daemon=True)

    def _run(self) -> None:
        # Event.wait paces the output; it is the program being simulated, not synchronisation.
        while not self.stop.wait(self.every_s):
            self.ring.write(self.data)

    def __enter__(self) -> Chatter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5.0)


def _wait_then_read(
    ring: ByteRing, condition: Condition, cursor: int, max_bytes: int, timeout_s: float
) -> tuple[RingRead, str]:
    ended_by = wait_for(ring, condition, timeout_s, threading.Event())
    return ring.read(cursor, max_bytes), ended_by


def _quiet(ring: ByteRing, idle_s: float) -> Quiet:
    return Quiet(ring, idle_s, time.monotonic())


# -- quiet ---------------------------------------------------------------------------------


def test_an_idle_wait_returns_once_the_output_has_been_quiet() -> None:
    ring = ByteRing(1024)
    ring.write(b"before")
    started = time.monotonic()
    chunk, ended_by = _wait_then_read(ring, _quiet(ring, 0.05), 0, 100, timeout_s=5.0)
    elapsed = time.monotonic() - started
    assert (chunk.data, ended_by) == (b"before", "idle")
    assert 0.05 <= elapsed < 2.0  # the quiet window counts from the call, not from the last write


def test_an_idle_wait_waits_for_a_burst_to_finish() -> None:
    ring = ByteRing(1024)
    done = threading.Event()

    def burst() -> None:
        for _ in range(5):
            ring.write(b"x")
            done.wait(0.02)  # a program printing in bursts, closer together than the idle window
        ring.write(b"!")

    writer = threading.Thread(target=burst)
    writer.start()
    try:
        chunk, ended_by = _wait_then_read(ring, _quiet(ring, 0.2), 0, 100, timeout_s=5.0)
    finally:
        writer.join(5.0)
    assert (chunk.data, ended_by) == (b"xxxxx!", "idle")


def test_an_idle_wait_gives_up_at_its_timeout_while_output_keeps_coming() -> None:
    ring = ByteRing(1024)
    with Chatter(ring, every_s=0.005):
        wait_until(lambda: ring.end > 0, what="the chatter to start")
        started = time.monotonic()
        chunk, ended_by = _wait_then_read(ring, _quiet(ring, 10.0), 0, 1024, timeout_s=0.15)
        elapsed = time.monotonic() - started
    assert ended_by == "timeout"
    assert 0.15 <= elapsed < 3.0  # nowhere near the 10 s idle window
    assert chunk.data.startswith(b".")


def test_any_wait_ends_at_once_when_the_program_has_ended() -> None:
    ring = ByteRing(64)
    ring.write(b"bye")
    ring.close()
    started = time.monotonic()
    chunk, ended_by = _wait_then_read(ring, _quiet(ring, 5.0), 0, 64, timeout_s=10.0)
    assert (chunk.data, ended_by) == (b"bye", "shell_exited")
    assert time.monotonic() - started < 1.0


# -- patterns ------------------------------------------------------------------------------


def test_a_pattern_is_matched_on_plain_text_after_the_cursor() -> None:
    ring = ByteRing(1 << 16)
    ring.write(b"DONE before the cursor\n")
    cursor = ring.end
    ring.write(b"\x1b[32mtests \x1b[0mpassed: 3\r\n")
    seen = PatternSeen(ring, re.compile(r"^tests passed: \d+$", re.M), cursor)
    assert seen.check(time.monotonic())[0] == "pattern"
    assert PatternSeen(ring, re.compile("DONE"), cursor).check(time.monotonic())[0] is None


def test_a_pattern_wait_returns_as_soon_as_the_text_shows_while_output_goes_on() -> None:
    ring = ByteRing(1 << 20)
    with Chatter(ring, every_s=0.002, data=b"working...\n"):
        threading.Timer(0.1, ring.write, args=(b"progress: 100%\n",)).start()
        chunk, ended_by = _wait_then_read(
            ring, PatternSeen(ring, re.compile(r"progress: 100%"), 0), 0, 1 << 20, timeout_s=30.0
        )
    assert ended_by == "pattern"
    assert b"progress: 100%" in chunk.data


def test_a_pattern_split_across_writes_and_redrawn_by_a_carriage_return_is_found() -> None:
    ring = ByteRing(1 << 16)
    seen = PatternSeen(ring, re.compile(r"^100% ok$", re.M), 0)
    ring.write(b"12% ..")
    assert seen.check(time.monotonic())[0] is None
    ring.write(b"\r100% o")
    assert seen.check(time.monotonic())[0] is None
    ring.write(b"k\r\n")
    assert seen.check(time.monotonic())[0] == "pattern"


def test_a_pattern_is_looked_for_in_the_newest_text_of_a_long_flood_and_found_there() -> None:
    ring = ByteRing(8 << 20)
    seen = PatternSeen(ring, re.compile(r"^FOUND \d+$", re.M), 0)
    for _ in range(40):  # 4 MB of lines, a look after each 100 KB: each look costs what is new
        ring.write(b"y\r\n" * 33_000)
        assert seen.check(time.monotonic())[0] is None
    ring.write(b"FOUND 42\r\n")
    assert seen.check(time.monotonic())[0] == "pattern"
    endless = PatternSeen(ring, re.compile("END"), ring.end)
    for _ in range(40):  # a line that never ends: only its newest bytes are converted again
        ring.write(b"z" * 100_000)
        assert endless.check(time.monotonic())[0] is None
    ring.write(b"END")
    assert endless.check(time.monotonic())[0] == "pattern"


# -- commands ------------------------------------------------------------------------------


def test_a_command_wait_ends_at_the_prompt_not_before() -> None:
    ring = ByteRing(1024)
    commands = CommandState(ring)
    commands.typed(b"sleep 1; false\n")
    threading.Timer(0.1, commands.prompted, args=(1,)).start()
    ended_by = _wait_then_read(ring, CommandDone(commands), 0, 1024, timeout_s=30.0)[1]
    assert (ended_by, commands.status, commands.running) == ("command_done", 1, False)


def test_a_command_ends_where_its_prompt_mark_was() -> None:
    ring = ByteRing(1024)
    commands = CommandState(ring)
    ring.write(b"output\r\n")
    commands.prompted(0)
    ring.write(b"$ ")
    assert commands.done_at == len(b"output\r\n")


def test_a_command_wait_with_nothing_running_ends_at_once_with_the_last_status() -> None:
    ring = ByteRing(1024)
    commands = CommandState(ring)
    commands.prompted(7)
    commands.typed(b"half a line")  # no Enter: no command has started
    started = time.monotonic()
    assert _wait_then_read(ring, CommandDone(commands), 0, 1024, timeout_s=30.0)[1] == "command_done"
    assert commands.status == 7
    assert time.monotonic() - started < 5.0


def test_a_command_wait_times_out_while_the_command_runs() -> None:
    ring = ByteRing(1024)
    commands = CommandState(ring)
    commands.typed(b"cat\n")
    assert _wait_then_read(ring, CommandDone(commands), 0, 1024, timeout_s=0.05)[1] == "timeout"


# -- prompt marks --------------------------------------------------------------------------


def _mark(status: int, nonce: str = NONCE) -> bytes:
    return f"\x1b]6973;roost;{nonce};{status}\x07".encode()


def test_marks_are_taken_out_of_the_output_with_their_status_in_place() -> None:
    marks = MarkFilter(NONCE)
    assert marks.feed(b"out\r\n" + _mark(2) + b"$ ") == [b"out\r\n", 2, b"$ "]


def test_a_mark_cut_across_reads_is_still_found_and_held_back_meanwhile() -> None:
    data = b"x" + _mark(0) + b"$ "
    for cut in range(1, len(data)):
        marks = MarkFilter(NONCE)
        pieces = marks.feed(data[:cut]) + marks.feed(data[cut:])
        assert b"".join(p for p in pieces if isinstance(p, bytes)) == b"x$ "
        assert [p for p in pieces if isinstance(p, int)] == [0]


def test_a_mark_with_another_nonce_is_ordinary_output() -> None:
    fake = _mark(0, nonce="fedcba9876543210")
    assert MarkFilter(NONCE).feed(b"a" + fake + b"b") == [b"a" + fake + b"b"]


def test_what_looked_like_the_start_of_a_mark_is_released_by_flush() -> None:
    marks = MarkFilter(NONCE)
    assert marks.feed(b"abc\x1b]6973;ro") == [b"abc"]
    assert marks.holding
    assert marks.flush() == b"\x1b]6973;ro"
    assert not marks.holding


@pytest.mark.parametrize("argv", [["bash", "-i"], ["sh", "-i"]])
def test_a_hook_is_made_for_bash_and_sh_only_and_its_file_removed(argv: list[str]) -> None:
    hook = prompt_hook(argv, {"PATH": "/bin"})
    assert hook is not None
    with open(hook.rc_path) as rc:
        text = rc.read()
    assert hook.nonce in text
    assert "\x1b" not in text and "\x07" not in text  # printing the rc's variables prints no mark
    hook.remove()
    hook.remove()  # twice is fine
    assert prompt_hook(["python3", "-q"], {}) is None


def test_a_cancelled_wait_stops_with_cancelled() -> None:
    ring = ByteRing(1024)
    commands = CommandState(ring)
    commands.typed(b"sleep 100\n")
    cancelled = threading.Event()
    threading.Timer(0.05, cancelled.set).start()
    with pytest.raises(OpError) as info:
        wait_for(ring, CommandDone(commands), 60.0, cancelled)
    assert info.value.code == "cancelled"
