"""What orchestration prepares for each kind of backend before it boots a workspace, and what a
start needs again."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.backends import get_backend
from roost.errors import NotFound
from roost.store.records import WorkspaceRecord, utc_now
from roost.workspace import boot_images


def _stopped(backend: str, image: str | None) -> WorkspaceRecord:
    now = utc_now()
    return WorkspaceRecord("ws-0123456789", "debian:12", backend, "stopped", now, now, image=image)


def test_a_backend_that_boots_from_the_host_gets_nothing_from_the_image_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"

    prepared = boot_images.for_create(home, get_backend("mock"), "debian:12")

    assert prepared == boot_images.BootImage()
    assert not home.exists()  # not even an image cache was made


def test_starting_a_sandbox_whose_image_is_no_longer_cached_is_image_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as caught:
        boot_images.for_start(tmp_path / "home", get_backend("sandbox"), _stopped("sandbox", "sha256-gone"))
    assert caught.value.code == "image_missing"
    assert "debian:12" in caught.value.message


def test_a_microvm_boots_the_disk_it_kept_so_its_start_needs_no_image(tmp_path: Path) -> None:
    start = boot_images.for_start(tmp_path / "home", get_backend("firecracker"), _stopped("firecracker", "x"))
    assert start == boot_images.BootImage()
