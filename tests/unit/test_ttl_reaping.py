"""Whether a reap is due is one file read: a TTL set lowers the next expiry, a scan writes it again, and
nothing is scanned while none is due."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from roost.store import expiry
from roost.workspace import lifecycle, reaping
from roost.workspace.engine import Engine


def test_a_missing_or_garbled_file_means_scan_now_and_none_means_never(tmp_path: Path) -> None:
    now = time.time()
    assert expiry.due(tmp_path, now)
    expiry.path_in(tmp_path).write_text("soon\n")
    assert expiry.due(tmp_path, now)
    expiry.write(tmp_path, math.inf)
    assert not expiry.due(tmp_path, now + 10**9)
    expiry.write(tmp_path, now + 60)
    assert (expiry.due(tmp_path, now), expiry.due(tmp_path, now + 61)) == (False, True)


def test_lower_only_moves_the_next_expiry_earlier_and_leaves_an_unknown_one_unknown(tmp_path: Path) -> None:
    expiry.lower(tmp_path, 100.0)
    assert expiry.read(tmp_path) is None  # unknown stays unknown: the scan it calls for finds this TTL too
    expiry.write(tmp_path, 200.0)
    expiry.lower(tmp_path, 300.0)
    assert expiry.read(tmp_path) == 200.0
    expiry.lower(tmp_path, 150.0)
    assert expiry.read(tmp_path) == 150.0


def test_nothing_is_scanned_until_a_ttl_is_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(tmp_path / "home", "mock")
    created = lifecycle.create(engine, lifecycle.CreateOptions(env="debian:12", ttl_seconds=3600))
    try:
        assert reaping.reap_due(engine) == []  # the first look scans (the file was unknown) and writes it
        assert expiry.read(engine.store.home) == pytest.approx(time.time() + 3600, abs=5)

        def no_scan() -> None:
            raise AssertionError("the records were read although no TTL was due")

        monkeypatch.setattr(engine.store, "records", no_scan)
        assert reaping.reap_due(engine) == []
    finally:
        monkeypatch.undo()
        lifecycle.delete(engine, created.record.id)
        engine.close()


def test_a_shorter_ttl_set_by_update_makes_the_reap_due_then(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "home", "mock")
    created = lifecycle.create(engine, lifecycle.CreateOptions(env="debian:12", ttl_seconds=3600))
    try:
        reaping.reap_due(engine)
        lifecycle.update(engine, created.record.id, ttl_seconds=1)
        assert expiry.read(engine.store.home) == pytest.approx(time.time() + 1, abs=2)
        time.sleep(1.1)
        assert reaping.reap_due(engine) == [created.record.id]
        assert expiry.read(engine.store.home) == math.inf
    finally:
        if created.record.id in engine.store.ids():
            lifecycle.delete(engine, created.record.id)
        engine.close()
