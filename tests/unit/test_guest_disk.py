"""The guest root disk: roost's files on a hard-link farm of the cached rootfs, never written through into
the cache, and a real ext4 image that holds them."""

from __future__ import annotations

import importlib.util
import marshal
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from roost.errors import ImageError
from roost.images.build import MOUNT_POINTS
from roost.images.cache import MARKER
from roost.images.vm.build import GuestImage, image_key, load_guest_image, prune_older
from roost.images.vm.disk import (
    CODE_PATH,
    INIT_PATH,
    GuestFile,
    add_bundle,
    add_guest_files,
    build_disk,
    bytecode,
    files_digest,
    guest_files,
    link_tree,
    resolve_inside,
    tree_blocks,
)
from roost.images.vm.kernel import KernelBundle
from roost.images.vm.launch import own_python_launcher, python_tag

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "src" / "roost"
DEBIAN_LAUNCHER = own_python_launcher("/usr/bin/python3")


def fake_rootfs(root: Path) -> Path:
    """A merged-/usr layout like Debian's: /sbin -> usr/sbin, /bin -> usr/bin."""
    for directory in ("usr/sbin", "usr/bin", "etc", "opt"):
        (root / directory).mkdir(parents=True)
    (root / "sbin").symlink_to("usr/sbin")
    (root / "bin").symlink_to("usr/bin")
    (root / "usr/bin/python3").write_text("#!/bin/false\n")
    (root / "etc/hostname").write_text("cached\n")
    (root / MARKER).write_text("{}")
    return root


def test_guest_files_carry_the_agent_protocol_and_init_but_nothing_host_only() -> None:
    files = guest_files(PACKAGE_DIR, DEBIAN_LAUNCHER)
    paths = {f.path for f in files}
    assert "opt/roost/roost/__init__.py" in paths
    assert "opt/roost/roost/agent/__main__.py" in paths
    assert "opt/roost/roost/protocol/frames.py" in paths
    assert "opt/roost/roost/guest/init.py" in paths
    assert INIT_PATH in paths
    top = {p.split("/")[3] for p in paths if p.startswith("opt/roost/roost/") and p.count("/") > 3}
    assert top == {"agent", "protocol", "guest"}
    launcher = next(f for f in files if f.path == INIT_PATH)
    assert launcher.mode == 0o755 and launcher.data.startswith(b"#!/usr/bin/python3")
    assert files_digest(files) == files_digest(guest_files(PACKAGE_DIR, DEBIAN_LAUNCHER))


def test_the_guest_files_alone_import_every_agent_module(tmp_path: Path) -> None:
    """Every module of the agent's packages is shipped, and needs nothing but them and the stdlib."""
    for item in guest_files(PACKAGE_DIR, DEBIAN_LAUNCHER):
        target = tmp_path / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
    code = tmp_path / CODE_PATH
    modules = sorted(
        ".".join(source.relative_to(code).with_suffix("").parts).removesuffix(".__init__")
        for source in (code / "roost" / "agent").rglob("*.py")
    )
    shipped = sorted(
        ".".join(source.relative_to(PACKAGE_DIR.parent).with_suffix("").parts).removesuffix(".__init__")
        for source in (PACKAGE_DIR / "agent").rglob("*.py")
    )
    assert modules == shipped
    # -S: no site-packages, so the copy (not this checkout) is all there is to import.
    probe = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
        "print(all(importlib.import_module(m).__file__.startswith(sys.argv[1]) for m in sys.argv[2:]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(code), *modules], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "True", "")


def test_paths_resolve_through_the_trees_own_symlinks_and_never_leave_it(tmp_path: Path) -> None:
    tree = fake_rootfs(tmp_path / "tree")
    (tree / "etc/abs").symlink_to("/usr/bin")
    (tree / "etc/up").symlink_to("../../../..")
    assert resolve_inside(tree, "sbin/roost-init") == tree / "usr/sbin/roost-init"
    assert resolve_inside(tree, "/etc/abs/tool") == tree / "usr/bin/tool"
    assert resolve_inside(tree, "etc/up/etc/passwd") == tree / "etc/passwd"
    assert resolve_inside(tree, "../../x") == tree / "x"


def test_adding_guest_files_never_writes_through_a_hard_link_into_the_cache(tmp_path: Path) -> None:
    cached = fake_rootfs(tmp_path / "cached")
    tree = tmp_path / "tree"
    link_tree(cached, tree)
    assert os.stat(tree / "etc/hostname").st_ino == os.stat(cached / "etc/hostname").st_ino
    add_guest_files(tree, [GuestFile("etc/hostname", b"roost\n"), GuestFile(INIT_PATH, b"#!init\n", 0o755)])
    assert (cached / "etc/hostname").read_text() == "cached\n"
    assert (tree / "etc/hostname").read_text() == "roost\n"
    assert (tree / "usr/sbin/roost-init").read_bytes() == b"#!init\n"
    assert os.stat(tree / "usr/sbin/roost-init").st_mode & 0o777 == 0o755
    assert not (cached / "usr/sbin/roost-init").exists()
    assert not (tree / MARKER).exists() and (cached / MARKER).exists()
    assert all((tree / mount_point).is_dir() for mount_point in MOUNT_POINTS)


def test_hard_linked_files_are_counted_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10000)
    os.link(tmp_path / "a", tmp_path / "b")
    assert tree_blocks(tmp_path) == 3 * 4096 + 256  # one inode, three data blocks


@pytest.mark.skipif(
    shutil.which("mkfs.ext4") is None or shutil.which("debugfs") is None, reason="e2fsprogs is not installed"
)
def test_the_disk_is_an_ext4_image_with_roosts_files_and_the_cache_untouched(tmp_path: Path) -> None:
    cached = fake_rootfs(tmp_path / "cached")
    staging = tmp_path / "staging"
    staging.mkdir()
    image = tmp_path / "rootfs.ext4"
    files = guest_files(PACKAGE_DIR, DEBIAN_LAUNCHER)
    size = build_disk(cached, files, staging, image)
    assert image.stat().st_size == size >= 1024 * 1024 * 1024
    assert not (staging / "tree").exists()
    assert not (cached / "usr/sbin/roost-init").exists()
    label = subprocess.run(["e2label", str(image)], capture_output=True, text=True, check=True).stdout.strip()
    assert label == "roost-root"

    def cat(path: str) -> bytes:
        return subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True, check=True).stdout

    assert cat("/usr/sbin/roost-init") == next(f.data for f in files if f.path == INIT_PATH)
    assert cat("/opt/roost/roost/guest/init.py") == (PACKAGE_DIR / "guest" / "init.py").read_bytes()
    assert cat("/etc/hostname") == b"cached\n"
    listing = subprocess.run(["debugfs", "-R", "ls -l /", str(image)], capture_output=True, text=True, check=True)
    assert "workspace" in listing.stdout and MARKER not in listing.stdout


def fake_bundle(root: Path) -> Path:
    """A bundle as the image cache holds it: world-readable, owner-writable."""
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "bin" / "python3").write_bytes(b"\x7fELF python")
    (root / "lib" / "libc.so.6").write_bytes(b"\x7fELF libc")
    os.chmod(root / "bin" / "python3", 0o755)
    os.chmod(root / "lib" / "libc.so.6", 0o644)
    return root


def test_the_bundle_is_copied_read_only_over_whatever_the_image_had_there(tmp_path: Path) -> None:
    bundle = fake_bundle(tmp_path / "bundle")
    tree = fake_rootfs(tmp_path / "tree")
    (tree / "opt/roost/python").mkdir(parents=True)
    (tree / "opt/roost/python/planted").write_text("the image's")
    add_bundle(tree, bundle)
    copied = tree / "opt/roost/python"
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*")) == [
        "bin",
        "bin/python3",
        "lib",
        "lib/libc.so.6",
    ]
    assert (copied / "bin/python3").read_bytes() == b"\x7fELF python"
    modes = {p.relative_to(copied).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [copied, *copied.rglob("*")]}
    assert modes == {".": 0o555, "bin": 0o555, "bin/python3": 0o555, "lib": 0o555, "lib/libc.so.6": 0o444}
    assert os.stat(copied / "bin/python3").st_ino != os.stat(bundle / "bin/python3").st_ino
    assert stat.S_IMODE((bundle / "bin/python3").stat().st_mode) == 0o755, "the cached bundle keeps its modes"


def test_a_bundle_that_cannot_be_copied_is_a_disk_build_failure(tmp_path: Path) -> None:
    tree = fake_rootfs(tmp_path / "tree")
    with pytest.raises(ImageError) as caught:
        add_bundle(tree, tmp_path / "no-such-bundle")
    assert caught.value.code == "disk_build_failed" and "python bundle" in caught.value.message


@pytest.mark.skipif(
    shutil.which("mkfs.ext4") is None or shutil.which("debugfs") is None, reason="e2fsprogs is not installed"
)
def test_a_disk_for_an_image_without_python3_holds_the_bundle_and_the_boot_directories(tmp_path: Path) -> None:
    bare = tmp_path / "busybox"
    (bare / "bin").mkdir(parents=True)
    (bare / "bin/busybox").write_bytes(b"\x7fELF busybox")
    staging = tmp_path / "staging"
    staging.mkdir()
    image = tmp_path / "rootfs.ext4"
    build_disk(bare, [GuestFile(INIT_PATH, b"# launcher\n", 0o755)], staging, image, fake_bundle(tmp_path / "b"))
    assert not (staging / "tree").exists()

    def debugfs(request: str) -> str:
        return subprocess.run(["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=True).stdout

    assert debugfs("cat /opt/roost/python/bin/python3") == "\x7fELF python"
    assert "Mode:  0555" in debugfs("stat /opt/roost/python/bin/python3")
    assert "Mode:  0444" in debugfs("stat /opt/roost/python/lib/libc.so.6")
    assert debugfs("cat /sbin/roost-init") == "# launcher\n"
    # `ls -p` lines are /inode/mode/uid/gid/name/size/
    top = {line.split("/")[5]: line.split("/")[2] for line in debugfs("ls -p /").splitlines() if line.count("/") > 5}
    assert {name: top.get(name) for name in ("dev", "proc", "sys", "workspace")} == dict.fromkeys(
        ("dev", "proc", "sys", "workspace"), "040755"
    )


def test_a_guest_image_directory_without_all_its_files_is_not_used(tmp_path: Path) -> None:
    directory = tmp_path / "img"
    directory.mkdir()
    (directory / "guest.json").write_text('{"format": "1", "env": "debian:12"}')
    (directory / "vmlinux").write_bytes(b"\x7fELF")
    (directory / "initramfs.cpio.gz").write_bytes(b"")
    assert load_guest_image(directory) is None
    (directory / "rootfs.ext4").write_bytes(b"")
    image = load_guest_image(directory)
    assert isinstance(image, GuestImage)
    assert image.agent_vsock_port == 1024 and "roost.agent=vsock:1024" in image.boot_args
    assert "reboot=k" in image.boot_args and "console=ttyS0" in image.boot_args


def test_the_image_key_changes_with_every_input() -> None:
    kernel = KernelBundle(Path("/k"), "sha256-k", "6.1", "lz4", ("virtio",), "linux-image", "1", "ab" * 32)
    other_kernel = KernelBundle(Path("/k"), "sha256-k2", "6.1", "lz4", ("virtio",), "linux-image", "1", "ab" * 32)
    base = image_key("env1", kernel, "bb", "code")
    assert base == image_key("env1", kernel, "bb", "code")
    assert len({base, image_key("env2", kernel, "bb", "code"), image_key("env1", other_kernel, "bb", "code")}) == 3
    assert base != image_key("env1", kernel, "cc", "code") != image_key("env1", kernel, "bb", "code2")


def test_only_the_newest_guest_images_of_an_env_are_kept(tmp_path: Path) -> None:
    for name, env, created in (
        ("old", "debian:12", "2026-01-01T00:00:00Z"),
        ("mid", "debian:12", "2026-02-01T00:00:00Z"),
        ("new", "debian:12", "2026-03-01T00:00:00Z"),
        ("other", "debian:12-base", "2025-01-01T00:00:00Z"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "guest.json").write_text(f'{{"env": "{env}", "created_at": "{created}"}}')
    assert prune_older(tmp_path, "debian:12", current="mid", keep=2) == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid", "new", "other"]


def test_an_unresolvable_path_in_the_tree_is_an_image_error(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "loop").symlink_to("loop")
    with pytest.raises(ImageError) as caught:
        resolve_inside(tree, "loop/x")
    assert caught.value.code == "guest_path_escapes"


def test_bytecode_is_made_only_for_the_envs_own_python_and_checks_its_source(tmp_path: Path) -> None:
    source = GuestFile("opt/roost/roost/guest/demo.py", b"ANSWER = 6 * 7\n")
    tag = sys.implementation.cache_tag
    assert bytecode([source], "cpython-26") == []
    (compiled,) = bytecode([source, GuestFile("sbin/roost-init", b"#!/usr/bin/python3\n", 0o755)], tag)
    assert compiled.path == f"opt/roost/roost/guest/__pycache__/demo.{tag}.pyc"
    data = compiled.data
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked against the source
    assert data[8:16] == importlib.util.source_hash(source.data)
    code = marshal.loads(data[16:])
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["ANSWER"] == 42
    assert code.co_filename == "/opt/roost/roost/guest/demo.py"


def test_the_envs_python_version_is_read_from_its_python3_link(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    assert python_tag(tmp_path, "/usr/bin/python3") is None
    (tmp_path / "usr/bin/python3").symlink_to("python3.11")
    assert python_tag(tmp_path, "/usr/bin/python3") == "cpython-311"
