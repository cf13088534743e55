"""The backend contract: every test here runs once per backend this machine can run.

`backend` is parametrized over `roost.backends.BACKEND_NAMES` filtered by
availability, so a backend joins the suite as soon as it is registered and
works here. Tests talk to workspaces through the SDK only.

Every test has its own `$ROOST_HOME`, but environment images are shared:
each home's `images` links to `$ROOST_IMAGES` when set, else to
`<repo>/.cache/images`, so an image is built once per machine rather than
once per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import roost_client
from roost import Roost, RoostError, Workspace
from roost.backends import BACKEND_NAMES, get_backend
from roost.config import IMAGES_ENV

REPO = Path(__file__).resolve().parents[2]


def available_backends() -> list[str]:
    names = []
    for name in BACKEND_NAMES:
        try:
            if get_backend(name).availability().available:
                names.append(name)
        except RoostError:
            continue
    return names


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """One image cache for every test home (each home links to it; no environment is patched)."""
    images = Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")
    images.mkdir(parents=True, exist_ok=True)
    return images


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def roost_home(tmp_path: Path, shared_images: Path) -> Path:
    """The test's own `$ROOST_HOME` (a suite may override it, e.g. with a small tmpfs)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "images").symlink_to(shared_images, target_is_directory=True)  # the default `<home>/images`
    return home


@pytest.fixture
def roost(roost_home: Path, backend: str) -> Iterator[Roost]:
    # Whatever a test created (or left half-broken) goes at teardown, processes included.
    with roost_client(roost_home, backend) as client:
        yield client


@pytest.fixture
def workspace(roost: Roost) -> Iterator[Workspace]:
    created = roost.create_workspace("debian:12")
    try:
        yield created
    finally:
        try:
            created.delete(force=True)
        except RoostError as exc:
            if exc.code != "workspace_not_found":
                raise
