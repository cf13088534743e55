"""Suite-wide settings: hypothesis runs without per-example deadlines on loaded CI machines."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `tests.helpers` is imported as `helpers` from every suite.
sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile("roost", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("roost")


@pytest.fixture
def agent_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Agent processes a test started; killed (by pid) and reaped at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
