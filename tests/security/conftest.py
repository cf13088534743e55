"""Security and fault regression tests from issue 11, each harmless when it fails.

Every test here probes without exploiting: it opens for append without writing,
calls system calls with arguments that could not do harm even if they were
allowed, uses unique names, and cleans up what it made.

Fixtures: the contract suite's (reused, not copied): `backend`, `roost_home`,
`roost` (once per backend this machine can run, its workspaces all deleted at
teardown) and `workspace`; the e2e suite's CLI runner on the same home and
backend (`cli`); and `sandbox` / `mock` for attacks that concern one backend
(the sandbox's boundary; mock as the unfiltered control).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.conftest import backend, roost, roost_home, shared_images, workspace
from e2e.conftest import RoostCli
from helpers import roost_client
from roost import Roost
from roost.backends import get_backend

__all__ = ["backend", "cli", "mock", "roost", "roost_home", "sandbox", "shared_images", "workspace"]

SANDBOX = get_backend("sandbox").availability()


@pytest.fixture
def cli(roost: Roost, backend: str) -> RoostCli:
    """`python -m roost` as a separate process on the test's home and backend."""
    runner = RoostCli(roost.home)
    runner.env["ROOST_BACKEND"] = backend
    return runner


@pytest.fixture
def sandbox(roost_home: Path) -> Iterator[Roost]:
    """A Roost on the sandbox backend (skips where bubblewrap cannot run)."""
    if not SANDBOX.available:
        pytest.skip(f"the sandbox backend cannot run here: {SANDBOX.reason}")
    with roost_client(roost_home, "sandbox") as client:
        yield client


@pytest.fixture
def mock(roost_home: Path) -> Iterator[Roost]:
    """A Roost on the mock backend (host processes, no isolation): the unfiltered control."""
    with roost_client(roost_home, "mock") as client:
        yield client
