"""Fixtures for the attack regression suite: real sandboxes (and mock workspaces where an
attack applies to every backend), each test in its own `$ROOST_HOME` over the shared image
cache, everything deleted at teardown.

Every test here probes without exploiting: it opens for append without writing, calls
system calls with arguments that could not do harm even if they were allowed, uses unique
names, and cleans up what it made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import delete_all_workspaces
from roost import Roost
from roost.backends import get_backend
from roost.config import IMAGES_ENV
from roost.images.cache import ImageCache

REPO = Path(__file__).resolve().parents[2]
SANDBOX = get_backend("sandbox").availability()
needs_sandbox = pytest.mark.skipif(
    not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"
)


@pytest.fixture(scope="session")
def shared_images() -> Path:
    images = Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")
    if ImageCache(images).lookup("debian:12") is None:
        pytest.skip(f"debian:12 is not in the shared image cache {images}; run `make images`")
    return images


def _roost(tmp_path: Path, images: Path, backend: str) -> Iterator[Roost]:
    home = tmp_path / f"home-{backend}"
    home.mkdir(mode=0o700)
    (home / "images").symlink_to(images, target_is_directory=True)
    client = Roost(home=home, backend=backend)
    try:
        yield client
    finally:
        delete_all_workspaces(client)
        client.close()


@pytest.fixture
def sandbox(tmp_path: Path, shared_images: Path) -> Iterator[Roost]:
    """A Roost on the sandbox backend (skips where bubblewrap cannot run)."""
    if not SANDBOX.available:
        pytest.skip(f"the sandbox backend cannot run here: {SANDBOX.reason}")
    yield from _roost(tmp_path, shared_images, "sandbox")


@pytest.fixture
def mock(tmp_path: Path, shared_images: Path) -> Iterator[Roost]:
    """A Roost on the mock backend (host processes, no isolation): controls and host-path rules."""
    yield from _roost(tmp_path, shared_images, "mock")


@pytest.fixture(params=["mock", "sandbox"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path, shared_images: Path) -> Iterator[Roost]:
    """A Roost on each of mock and sandbox, for rules every backend must keep."""
    if request.param == "sandbox" and not SANDBOX.available:
        pytest.skip(f"the sandbox backend cannot run here: {SANDBOX.reason}")
    yield from _roost(tmp_path, shared_images, str(request.param))
