"""A detached process's log held under a limit: a VMM whose guest writes its console without end
must not fill the host's disk, and the newest output (what `death_reason` quotes) is always kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roost.backends.bounded_log import MINIMUM_LIMIT, keep
from roost.backends.processes import is_alive, log_tail, reap, spawn_detached, wait_for_log

LIMIT = 256 * 1024


def _feed(path: Path, data: bytes, limit: int) -> None:
    read_end, write_end = os.pipe()
    writer = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; os.write(1, sys.stdin.buffer.read())"],
        stdin=subprocess.PIPE,
        stdout=write_end,
    )
    os.close(write_end)
    assert writer.stdin is not None
    writer.stdin.write(data)
    writer.stdin.close()
    keep(read_end, str(path), limit)
    os.close(read_end)
    writer.wait(10)


def test_output_many_times_the_limit_leaves_a_file_under_it_ending_with_the_newest_lines(tmp_path: Path) -> None:
    log = tmp_path / "firecracker.log"
    lines = b"".join(b"console line %07d\n" % n for n in range(300_000))  # ~6 MB
    _feed(log, lines, LIMIT)

    kept = log.read_bytes()
    assert len(kept) <= LIMIT
    assert kept.endswith(b"console line 0299999\n")
    assert kept.startswith(b"--- roost: earlier output trimmed ---\nconsole line ")  # cut at a line start
    assert not (tmp_path / "firecracker.log.trim").exists()


def test_output_under_the_limit_is_appended_whole_after_what_the_file_held(tmp_path: Path) -> None:
    log = tmp_path / "firecracker.log"
    log.write_bytes(b"--- roost: starting\n")
    _feed(log, b"booted\n", LIMIT)
    assert log.read_bytes() == b"--- roost: starting\nbooted\n"


def test_a_tiny_limit_is_raised_to_the_minimum(tmp_path: Path) -> None:
    log = tmp_path / "firecracker.log"
    _feed(log, b"x" * 100 + b"\n" + b"y" * (3 * MINIMUM_LIMIT), 10)
    assert MINIMUM_LIMIT // 2 <= len(log.read_bytes()) <= MINIMUM_LIMIT


def test_a_log_that_is_a_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "firecracker.log").symlink_to(target)
    with pytest.raises(OSError):
        _feed(tmp_path / "firecracker.log", b"output\n", LIMIT)
    assert target.read_bytes() == b""


def test_a_detached_process_with_a_log_limit_keeps_its_log_bounded_and_its_last_words(tmp_path: Path) -> None:
    log = tmp_path / "vmm.log"
    spew = "import sys\nfor n in range(200_000): sys.stdout.write('noise %06d\\n' % n)\nprint('last words')"
    pid = spawn_detached(
        [sys.executable, "-c", spew], env={"PATH": os.environ["PATH"]}, log_path=log, cwd=tmp_path, log_limit=LIMIT
    )
    deadline = time.monotonic() + 20
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    reap(pid)
    wait_for_log(log, timeout=5)
    assert log.stat().st_size <= LIMIT
    assert log_tail(log) == "last words"


def test_log_tail_reads_only_the_end_of_a_large_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with open(log, "wb") as out:
        out.write(b"\xff" * (8 * 1024 * 1024))  # not text, and far more than the window
        out.write(b"\nthe end\n")
    assert log_tail(log, lines=1, window=1024) == "the end"
