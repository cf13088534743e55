"""`workspace disk` on a microVM's disk: a real ext4 image, made as the guest-image pipeline makes one
(`mkfs.ext4 -d`), read with debugfs without booting or mounting it, checked, repaired and grown.

The workspace is the in-memory backend's, whose stopped disk is that image (as a firecracker
workspace's is its `disk.ext4`): the disk tools are tested without a VM, through the SDK.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_backend import NAME, MemoryBackend
from roost.client import Roost, Workspace
from roost.errors import RoostError
from roost.workspace.disk.debugfs import Debugfs, DirRecord
from roost.workspace.engine import Engine

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) or os.path.exists(f"/usr/sbin/{t}") for t in ("mkfs.ext4", "debugfs", "e2fsck")),
    reason="e2fsprogs (mkfs.ext4, debugfs, e2fsck, resize2fs) is not installed",
)

BIG = 200 * 1024 * 1024
MARK_AT = 150_000_000
ODD = os.fsdecode(b"caf\xe9")  # not UTF-8
LONG_TARGET = "../" + "x" * 90  # too long to sit in the inode: a "slow" symlink
TRICKY = "two\nlines debugfs: ls -p <2>"  # a newline, and text like debugfs's own echo
MKFS = "/usr/sbin/mkfs.ext4" if os.path.exists("/usr/sbin/mkfs.ext4") else "mkfs.ext4"


def _tree(root: Path) -> None:
    ws = root / "workspace"
    (ws / "sub").mkdir(parents=True)
    (ws / "hello.txt").write_text("hello\n")
    (ws / "suid").write_text("#!/bin/sh\n")
    os.chmod(ws / "suid", 0o4777)
    os.symlink("/etc/passwd", ws / "out")
    os.symlink("../hello.txt", ws / "sub" / "rel")
    (ws / "sub" / "here.txt").write_text("here\n")
    os.symlink("here.txt", ws / "sub" / "same")
    os.symlink(LONG_TARGET, ws / "sub" / "long")
    (ws / ODD).write_bytes(b"odd\n")
    (ws / TRICKY).write_text("tricky\n")
    with open(ws / "big", "wb") as big:
        big.truncate(BIG)
        big.seek(MARK_AT)
        big.write(b"MARK")
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("guest\n")


@pytest.fixture(scope="module")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rootfs")
    _tree(root)
    image = root.parent / "disk.ext4"
    subprocess.run([MKFS, "-q", "-F", "-d", str(root), "-L", "roost-root", str(image), "300M"], check=True)
    return image


@pytest.fixture
def image(base_image: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "disk.ext4"
    subprocess.run(["cp", "--sparse=always", str(base_image), str(copy)], check=True)
    return copy


@pytest.fixture
def stopped(tmp_path: Path, image: Path) -> Iterator[Workspace]:
    backend = MemoryBackend()
    backend.disk_image = image
    roost = Roost(home=tmp_path / "home")
    roost._engine = Engine(tmp_path / "home", NAME, backends={NAME: backend})
    try:
        ws = roost.create_workspace("debian:12")
        ws.stop()
        yield ws
    finally:
        backend.close()
        roost.close()


def test_list_walks_the_image_in_tree_order_and_never_follows_a_link(stopped: Workspace) -> None:
    listing = stopped.disk.list("/workspace", recursive=True)
    by_name = {entry.path: entry for entry in listing.entries}
    paths = [entry.path for entry in listing.entries]
    assert paths == sorted(paths, key=os.fsencode)
    assert by_name["/workspace/out"].type == "symlink"
    assert by_name["/workspace/out"].target == "/etc/passwd"
    assert by_name["/workspace/sub/long"].target == LONG_TARGET
    assert by_name[f"/workspace/{ODD}"].size == 4
    assert by_name[f"/workspace/{TRICKY}"].size == 7
    assert by_name["/workspace/big"].size == BIG
    assert by_name["/workspace/suid"].mode == 0o4777
    assert by_name["/workspace/hello.txt"].mtime > 0
    assert '"/workspace/caf\\351"' in [entry.to_dict()["path"] for entry in listing.entries]


def test_list_pages_with_a_cursor_and_covers_everything_once(stopped: Workspace) -> None:
    whole = [entry.path for entry in stopped.disk.list(recursive=True).entries]
    seen: list[str] = []
    cursor = None
    while True:
        page = stopped.disk.list(recursive=True, limit=3, cursor=cursor)
        seen += [entry.path for entry in page.entries]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == whole


def test_read_takes_a_window_of_a_sparse_file_by_offset(stopped: Workspace) -> None:
    content = stopped.disk.read("big", offset=MARK_AT - 2, max_bytes=8)
    assert content.data == b"\0\0MARK\0\0"
    assert content.size == BIG and not content.eof
    assert stopped.disk.read("/etc/hostname").data == b"guest\n"
    assert stopped.disk.read(os.fsencode(f"/workspace/{ODD}")).data == b"odd\n"


def test_a_path_through_a_symlink_is_refused_not_followed(stopped: Workspace) -> None:
    with pytest.raises(RoostError) as refused:
        stopped.disk.read("/workspace/out/anything")
    assert refused.value.code == "path_not_allowed"
    with pytest.raises(RoostError) as link:
        stopped.disk.read("/workspace/out")
    assert link.value.code == "not_a_file"


def test_export_keeps_links_inside_and_drops_links_out_and_setuid_bits(stopped: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "exported.tar"
    result = stopped.disk.export("/workspace/sub", out, fmt="tar")
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"here.txt", "same"}
    assert members["same"].linkname == "here.txt"
    assert sorted((s.path, s.reason) for s in result.skipped) == [
        ("long", "symlink_escapes"),
        ("rel", "symlink_escapes"),  # ../hello.txt: out of the exported tree
    ]
    tree = tmp_path / "tree"
    single = stopped.disk.export("/workspace/suid", tree)
    assert single.files == 1 and (tree.stat().st_mode & 0o7777) == 0o755


def test_usage_counts_allocated_bytes_so_a_sparse_file_costs_little(stopped: Workspace) -> None:
    usage = stopped.disk.usage("/", top=3)
    assert usage.top[0].path == "/"
    assert usage.total_bytes < 1024 * 1024  # the 200 MB file is nearly all holes
    assert usage.files >= 8


def test_check_reports_a_clean_disk(stopped: Workspace) -> None:
    result = stopped.disk.check()
    assert result.clean and result.exit_code == 0 and not result.repaired


def _corrupt(image: Path) -> None:
    """Point the root directory's inode at a nonsense link count and size, where e2fsck finds it."""
    raw = subprocess.run(["debugfs", "-w", "-R", "sif <2> links_count 7", str(image)], capture_output=True, check=False)
    assert raw.returncode == 0, raw.stderr


def test_check_finds_a_corrupted_disk_and_writes_nothing_then_repair_fixes_it(stopped: Workspace, image: Path) -> None:
    _corrupt(image)
    before = image.read_bytes()
    found = stopped.disk.check()
    assert not found.clean and found.exit_code == 4
    assert image.read_bytes() == before  # e2fsck -n: nothing written
    fixed = stopped.disk.check(repair=True)
    assert fixed.repaired and fixed.clean
    assert stopped.disk.check().clean
    assert stopped.disk.read("hello.txt").data == b"hello\n"


def test_grow_enlarges_image_and_filesystem_and_refuses_to_shrink(stopped: Workspace, image: Path) -> None:
    grown = stopped.disk.grow("400M")
    assert (grown.old_size_bytes, grown.size_bytes) == (300 * 1024**2, 400 * 1024**2)
    assert image.stat().st_size == 400 * 1024**2
    blocks = subprocess.run(["debugfs", "-R", "stats", str(image)], capture_output=True, text=True, check=True)
    assert "Block count:              409600" in blocks.stdout
    assert stopped.disk.check().clean
    with pytest.raises(RoostError) as shrink:
        stopped.disk.grow("100M")
    assert shrink.value.code == "invalid_argument"


def test_a_running_workspace_is_refused_with_the_way_out(stopped: Workspace) -> None:
    stopped.start()
    with pytest.raises(RoostError) as refused:
        stopped.disk.list()
    assert refused.value.code == "workspace_running"
    assert ".stop()" in refused.value.hint


def test_an_unreadable_image_is_a_clear_error(stopped: Workspace, image: Path) -> None:
    image.write_bytes(b"not a filesystem" * 100)
    with pytest.raises(RoostError) as broken:
        stopped.disk.list()
    assert broken.value.code == "disk_corrupt"


def test_listing_parses_names_holding_newlines_and_echo_lookalikes(image: Path) -> None:
    found = Debugfs(image).list_dirs([2])
    names = [record.name for record in found[2]]
    assert b"workspace" in names and b"etc" in names
    workspace = next(r for r in found[2] if r.name == b"workspace")
    inside = Debugfs(image).list_dirs([workspace.inode])[workspace.inode]
    assert TRICKY.encode() in [r.name for r in inside]
    assert all(isinstance(r, DirRecord) for r in inside)


def test_the_guest_image_pipelines_disk_reads_with_the_same_tools() -> None:
    """The debian:12 guest disk a firecracker workspace starts from, read in place (debugfs -c writes nothing)."""
    from helpers import SHARED_IMAGES
    from roost.errors import ImageError
    from roost.images.cache import ImageCache
    from roost.images.vm.build import ensure_guest_image
    from roost.workspace.disk.ext4_view import Ext4View

    try:
        rootfs = ensure_guest_image(ImageCache(SHARED_IMAGES), "debian:12").rootfs
    except ImageError as exc:
        pytest.skip(f"the guest image cannot be built here: {exc.code}")
    before = rootfs.stat().st_mtime_ns
    view = Ext4View(rootfs)
    assert view.node(("sbin",)).target == "usr/sbin"  # merged /usr: a link, never followed
    init = view.node(("usr", "sbin", "roost-init"))
    assert init.kind == "file" and init.mode & 0o111
    assert b"".join(view.read(init, 0)).startswith(b"#!")
    python = view.node(("usr", "bin", "python3"))
    assert python.kind == "symlink" and python.target and python.target.startswith("python3")
    agent = [node.path for node in view.walk(view.node(("opt", "roost", "roost")), recursive=False)]
    assert "/opt/roost/roost/agent" in agent
    assert rootfs.stat().st_mtime_ns == before


def test_a_workspace_being_deleted_is_busy_not_running(stopped: Workspace) -> None:
    import dataclasses

    from roost.store.states import DELETING

    engine = stopped._bound.engine
    record = engine.store.load(stopped.id)
    engine.store.save(dataclasses.replace(record, state=DELETING))
    with pytest.raises(RoostError) as busy:
        stopped.disk.usage()
    assert busy.value.code == "workspace_busy"
