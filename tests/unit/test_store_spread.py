"""Each workspace's tree gets a place of its own on disk, where the filesystem can do that."""

from __future__ import annotations

import array
import fcntl
import os
from pathlib import Path

import pytest

from roost.store.records import WorkspaceStore
from roost.store.spread import FS_IOC_GETFLAGS, FS_TOPDIR_FL, mark_hierarchy_parent


def _flags(directory: Path) -> int:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        return flags[0]
    finally:
        os.close(fd)


def _supports_topdir(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    return mark_hierarchy_parent(probe)


def test_the_workspaces_directory_is_marked_as_the_top_of_directory_hierarchies(tmp_path: Path) -> None:
    if not _supports_topdir(tmp_path):
        pytest.skip("this filesystem has no top-of-hierarchies attribute (tmpfs, overlayfs, ...)")
    store = WorkspaceStore(tmp_path / "home", lambda backend, stored: None)  # type: ignore[arg-type,return-value]

    store.ensure()

    assert _flags(store.root) & FS_TOPDIR_FL
    assert not _flags(store.home) & FS_TOPDIR_FL  # only where workspaces are made


def test_marking_keeps_the_other_attributes_and_is_idempotent(tmp_path: Path) -> None:
    if not _supports_topdir(tmp_path):
        pytest.skip("this filesystem has no top-of-hierarchies attribute (tmpfs, overlayfs, ...)")
    directory = tmp_path / "workspaces"
    directory.mkdir()
    before = _flags(directory)

    assert mark_hierarchy_parent(directory) and mark_hierarchy_parent(directory)

    assert _flags(directory) == before | FS_TOPDIR_FL


def test_a_path_that_is_no_directory_is_left_alone(tmp_path: Path) -> None:
    plain = tmp_path / "file"
    plain.write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "probe-dir")
    (tmp_path / "probe-dir").mkdir()

    assert mark_hierarchy_parent(plain) is False
    assert mark_hierarchy_parent(tmp_path / "link") is False  # never through a link
    assert mark_hierarchy_parent(tmp_path / "missing") is False
