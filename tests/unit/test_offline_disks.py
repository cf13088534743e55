"""Each backend names where a stopped workspace's files are for `workspace disk`, and the host-side
reader serves a guest path from the most specific tree holding it, never through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roost.backends import OfflineDisk
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.kvm import KvmReport
from roost.backends.mock import MockBackend
from roost.backends.sandbox.backend import SandboxBackend
from roost.errors import RoostError
from roost.workspace.disk.host_view import HostView
from roost.workspace.disk.view import disk_path


def test_a_microvm_disk_is_its_image_and_host_backends_name_their_directories(tmp_path: Path) -> None:
    firecracker = FirecrackerBackend(home=tmp_path, kvm=lambda: KvmReport("hardware", True, "ok"), jail=None)
    assert firecracker.offline_disk(tmp_path) == OfflineDisk(image=tmp_path / "disk.ext4")
    assert MockBackend().offline_disk(tmp_path).trees == (("/workspace", tmp_path / "workspace"),)
    assert SandboxBackend().offline_disk(tmp_path).trees == (
        ("/workspace", tmp_path / "workspace"),
        ("/", tmp_path / "layers" / "upper"),
    )


def test_guest_paths_are_below_workspace_unless_absolute_and_never_climb_above_root() -> None:
    assert disk_path("logs/a.txt") == ("workspace", "logs", "a.txt")
    assert disk_path("/etc/hostname") == ("etc", "hostname")
    assert disk_path("../../../etc") == ("etc",)
    assert disk_path(b"caf\xe9") == ("workspace", os.fsdecode(b"caf\xe9"))
    with pytest.raises(RoostError):
        disk_path("a\0b")


@pytest.fixture
def sandbox_like(tmp_path: Path) -> HostView:
    (tmp_path / "workspace" / "src").mkdir(parents=True)
    (tmp_path / "workspace" / "src" / "a.txt").write_text("a")
    (tmp_path / "upper" / "etc").mkdir(parents=True)
    (tmp_path / "upper" / "etc" / "motd").write_text("hi")
    (tmp_path / "upper" / "workspace").mkdir()  # the mount point in the upper layer: hidden by /workspace
    (tmp_path / "upper" / "workspace" / "shadowed").write_text("never seen")
    os.symlink(str(tmp_path / "workspace" / "src"), tmp_path / "upper" / "escape")
    return HostView(OfflineDisk(trees=(("/workspace", tmp_path / "workspace"), ("/", tmp_path / "upper"))))


def test_the_most_specific_tree_serves_a_path_and_shows_in_the_listing_above(sandbox_like: HostView) -> None:
    root = sandbox_like.node(())
    assert [n.path for n in sandbox_like.walk(root, recursive=True)] == [
        "/escape",
        "/etc",
        "/etc/motd",
        "/workspace",
        "/workspace/src",
        "/workspace/src/a.txt",
    ]
    node = sandbox_like.node(("workspace", "src", "a.txt"))
    assert b"".join(sandbox_like.read(node, 0)) == b"a"


def test_a_host_symlink_in_the_tree_is_a_link_never_a_way_through(sandbox_like: HostView) -> None:
    link = sandbox_like.node(("escape",))
    assert link.kind == "symlink" and link.target.endswith("/workspace/src")
    with pytest.raises(RoostError) as refused:
        sandbox_like.node(("escape", "a.txt"))
    assert refused.value.code == "path_not_allowed"
