"""The decision log: what a line holds, rotation at its bound, reading back with filters and following."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from roost.network.decision_log import LOG_NAME, DecisionLog, read_decisions


def test_a_decision_is_one_json_line_with_time_destination_verdict_and_reason(tmp_path: Path) -> None:
    DecisionLog(tmp_path).record(
        name="pypi.org", address="10.0.0.1", port=443, protocol="tcp", allowed=False, reason="sni_mismatch"
    )
    (line,) = (tmp_path / LOG_NAME).read_text().splitlines()
    data = json.loads(line)
    assert data["time"].endswith("Z") and "T" in data["time"]
    assert {key: data[key] for key in ("name", "address", "port", "protocol", "verdict", "reason")} == {
        "name": "pypi.org",
        "address": "10.0.0.1",
        "port": 443,
        "protocol": "tcp",
        "verdict": "denied",
        "reason": "sni_mismatch",
    }
    assert (tmp_path / LOG_NAME).stat().st_mode & 0o777 == 0o600


def test_the_log_rotates_at_its_bound_and_keeps_one_old_file(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path, max_bytes=1000)
    for index in range(100):
        log.record(name=f"n{index}.test", address="10.0.0.1", port=80, protocol="tcp", allowed=True, reason="egress")
    assert (tmp_path / LOG_NAME).stat().st_size <= 1000
    assert (tmp_path / (LOG_NAME + ".1")).stat().st_size <= 1000
    assert sorted(path.name for path in tmp_path.iterdir()) == [LOG_NAME, LOG_NAME + ".1"]
    names = [decision.name for decision in read_decisions(tmp_path)]
    assert names[-1] == "n99.test" and names == sorted(names, key=lambda name: int(name[1:-5]))


def test_denied_only_leaves_out_allowed_decisions(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path)
    log.record(name="a.test", address="", port=53, protocol="dns", allowed=True, reason="allowed_name")
    log.record(name="b.test", address="", port=53, protocol="dns", allowed=False, reason="name_not_allowed")
    assert [d.name for d in read_decisions(tmp_path, denied_only=True)] == ["b.test"]
    assert list(read_decisions(tmp_path / "missing")) == []


def test_following_yields_decisions_written_later_across_a_rotation(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path, max_bytes=500)  # about five lines a file: one rotation while the reader sleeps
    log.record(name="first.test", address="", port=53, protocol="dns", allowed=True, reason="egress")
    written = threading.Event()

    def write_more() -> None:
        for index in range(8):
            log.record(name=f"later{index}.test", address="", port=53, protocol="dns", allowed=True, reason="egress")
            time.sleep(0.1)
        written.set()

    writer = threading.Thread(target=write_more)
    writer.start()
    deadline = time.monotonic() + 10
    seen = [
        decision.name
        for decision in read_decisions(
            tmp_path,
            follow=True,
            stop=lambda: written.is_set() or time.monotonic() > deadline,
        )
    ]
    writer.join()
    assert seen == ["first.test", *(f"later{index}.test" for index in range(8))]
