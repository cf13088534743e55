"""The guest's root disk: an environment rootfs plus roost's init and agent, as an ext4 image.

The cached rootfs is never copied byte for byte: the staging tree is a
hard-link farm of it (`cp -al`), and roost's files are added as new files
(anything they replace is unlinked first, so a cached file is never written
through a link). `mkfs.ext4 -d` then builds the image from the tree without
root or mounts. The image is sparse; its size is the tree plus headroom for
a writable /workspace.

What goes in:
    /opt/roost/roost/{__init__.py, protocol/, agent/, guest/}   the agent and init code (stdlib only),
                                                                 precompiled when the env's python3 is
                                                                 this one's minor version
    /sbin/roost-init                                             PID 1: a launcher for roost.guest.init
                                                                 (images.vm.launch)
    /opt/roost/python                                            roost's python bundle, read-only, for
                                                                 an image without a usable python3
    /dev, /proc, /sys                                            when the image has none (the initramfs
                                                                 moves /dev there)
    roost's mount points (images.build.MOUNT_POINTS)

Imports: images.build, images.cache, errors and the standard library.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import marshal
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from roost.errors import ImageError
from roost.images.build import MOUNT_POINTS
from roost.images.cache import MARKER

INIT_PATH = "sbin/roost-init"
CODE_PATH = "opt/roost"
# The packages the guest runs; nothing host-only (cli, backends, images, ...) goes in.
GUEST_PACKAGES = ("protocol", "agent", "guest")
DISK_LABEL = "roost-root"
# Free space for /workspace and whatever the user installs, on top of the env itself.
HEADROOM_BYTES = 1024 * 1024 * 1024
_BLOCK = 4096
# What the guest's kernel and initramfs need on any root disk (an image need not have them).
BOOT_DIRECTORIES = ("dev", "proc", "sys")
BUNDLE_PATH = "opt/roost/python"


@dataclass(frozen=True)
class GuestFile:
    """One file roost adds to the guest disk, by its path inside the guest."""

    path: str
    data: bytes
    mode: int = 0o644


def guest_files(package_dir: Path, launcher: str) -> list[GuestFile]:
    """roost's files for the guest disk, from the `roost` package directory on this host, with
    `launcher` (images.vm.launch) as /sbin/roost-init (sorted by path)."""
    # The package's __init__ names its version from _version.py: both, and nothing else at the top.
    files = [
        GuestFile(f"{CODE_PATH}/roost/{name}", (package_dir / name).read_bytes())
        for name in ("__init__.py", "_version.py")
    ]
    for package in GUEST_PACKAGES:
        for source in sorted((package_dir / package).rglob("*.py")):
            relative = source.relative_to(package_dir).as_posix()
            files.append(GuestFile(f"{CODE_PATH}/roost/{relative}", source.read_bytes()))
    files.append(GuestFile(INIT_PATH, launcher.encode(), 0o755))
    return sorted(files, key=lambda f: f.path)


def bytecode(files: list[GuestFile], tag: str | None) -> list[GuestFile]:
    """`__pycache__` entries for the .py files, when `tag` is this interpreter's own.

    Checked-hash pycs: valid whatever the files' times, and the guest skips compiling the
    agent on every fresh workspace disk.
    """
    if tag != sys.implementation.cache_tag:
        return []
    compiled = []
    for item in files:
        if not item.path.endswith(".py"):
            continue
        code = compile(item.data, "/" + item.path, "exec", dont_inherit=True, optimize=0)
        header = importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little") + importlib.util.source_hash(item.data)
        directory, _, name = item.path.rpartition("/")
        path = f"{directory}/__pycache__/{name[:-3]}.{tag}.pyc"
        compiled.append(GuestFile(path, header + marshal.dumps(code)))
    return compiled


def files_digest(files: list[GuestFile]) -> str:
    digest = hashlib.sha256()
    for item in files:
        digest.update(f"{item.path}\0{item.mode:o}\0{len(item.data)}\0".encode())
        digest.update(item.data)
    return digest.hexdigest()


def resolve_inside(tree: Path, path: str) -> Path:
    """Where `path` (as the guest sees it) lands in `tree`, following the tree's own symlinks
    (absolute ones relative to the tree root, as inside the guest), never leaving the tree.

    Raises:
        ImageError: guest_path_escapes.
    """
    parts = list(PurePosixPath(path.lstrip("/")).parts)
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = tree.joinpath(*resolved, part)
        if parts and candidate.is_symlink():  # the last component itself is replaced, not followed
            hops += 1
            if hops > 40:
                raise ImageError(f"too many symlinks resolving {path} in the image", code="guest_path_escapes")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = list(PurePosixPath(target.lstrip("/")).parts) + parts
            continue
        resolved.append(part)
    result = tree.joinpath(*resolved)
    if os.path.commonpath([str(result), str(tree)]) != str(tree):
        raise ImageError(f"{path} resolves outside the image", code="guest_path_escapes")
    return result


def link_tree(rootfs: Path, tree: Path) -> None:
    """A hard-link farm of `rootfs` at `tree` (a real copy if hard links cannot be made).

    Raises:
        ImageError: disk_build_failed.
    """
    source = str(rootfs.resolve())  # a symlinked rootfs would otherwise be copied as the link itself
    for argv in (["cp", "-al", source, str(tree)], ["cp", "-a", source, str(tree)]):
        result = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
        if result.returncode == 0:
            return
        shutil.rmtree(tree, ignore_errors=True)
    raise ImageError(f"cannot stage the rootfs: {result.stderr.strip()}", code="disk_build_failed")


def add_guest_files(tree: Path, files: list[GuestFile]) -> None:
    """Put roost's files and mount points into the staging tree, unlinking whatever they replace."""
    (tree / MARKER).unlink(missing_ok=True)
    for mount_point in (*BOOT_DIRECTORIES, *MOUNT_POINTS):
        resolve_inside(tree, mount_point).mkdir(parents=True, exist_ok=True)
    for item in files:
        target = resolve_inside(tree, item.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)  # never write through a hard link into the cache
        target.write_bytes(item.data)
        os.chmod(target, item.mode)


def add_bundle(tree: Path, bundle: Path) -> None:
    """Copy roost's python bundle (`bundle`, in the image cache) to /opt/roost/python in the staging
    tree, read-only (0555 directories and programs, 0444 the rest), replacing whatever the image had there.

    Copies, not links: the cached bundle keeps its own modes.

    Raises:
        ImageError: disk_full, disk_build_failed, guest_path_escapes.
    """
    target = resolve_inside(tree, BUNDLE_PATH)
    try:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(bundle, target, symlinks=True)
        for dirpath, _dirnames, filenames in os.walk(target, topdown=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o555 if os.stat(path).st_mode & 0o111 else 0o444)
            os.chmod(dirpath, 0o555)
    except OSError as exc:
        code = "disk_full" if exc.errno == errno.ENOSPC else "disk_build_failed"
        raise ImageError(
            f"cannot copy the python bundle onto the guest disk: {exc.strerror or exc}", code=code
        ) from None


def tree_blocks(tree: Path) -> int:
    """Bytes the tree takes as ext4 4 KiB blocks, counting each hard-linked file once, plus one inode-ish block per entry."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += -(-st.st_size // _BLOCK) * _BLOCK
            total += 256  # the inode itself
    return total


def disk_size(tree: Path, headroom: int = HEADROOM_BYTES) -> int:
    """The image size: the tree, 20% for ext4's own metadata and journal, the headroom; whole MiB."""
    used = tree_blocks(tree)
    size = used + used // 5 + 64 * 1024 * 1024 + headroom
    return -(-size // (1024 * 1024)) * (1024 * 1024)


def make_ext4(tree: Path, image: Path, size: int) -> None:
    """`mkfs.ext4 -d tree` into a sparse file of `size` bytes.

    Raises:
        ImageError: no_mkfs, disk_build_failed, disk_full.
    """
    mkfs = shutil.which("mkfs.ext4") or ("/sbin/mkfs.ext4" if os.path.exists("/sbin/mkfs.ext4") else None)
    if mkfs is None:
        raise ImageError("mkfs.ext4 is not installed", code="no_mkfs", hint="apt-get install e2fsprogs")
    with open(image, "wb") as fh:
        fh.truncate(size)
    argv = [mkfs, "-F", "-q", "-t", "ext4", "-b", str(_BLOCK), "-m", "0", "-L", DISK_LABEL, "-d", str(tree), str(image)]
    result = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit {result.returncode}"
        code = "disk_full" if "No space left" in detail else "disk_build_failed"
        raise ImageError(f"mkfs.ext4 failed: {detail}", code=code)


def build_disk(rootfs: Path, files: list[GuestFile], staging: Path, image: Path, bundle: Path | None = None) -> int:
    """Build the guest disk `image` from `rootfs` plus `files` (and roost's python `bundle`, if
    given), working in `staging`; return its size.

    Raises:
        ImageError: disk_build_failed, disk_full, no_mkfs, guest_path_escapes.
    """
    tree = staging / "tree"
    link_tree(rootfs, tree)
    try:
        add_guest_files(tree, files)
        if bundle is not None:
            add_bundle(tree, bundle)
        size = disk_size(tree)
        make_ext4(tree, image, size)
    finally:
        _remove_tree(tree)
    return size


def _remove_tree(tree: Path) -> None:
    """rmtree that also removes what read-only directories (the bundle's copy) hold."""

    def writable_then_retry(function: Callable[..., object], path: str, _exc_info: object) -> None:
        try:
            os.chmod(os.path.dirname(path), 0o755)
            function(path)
        except OSError:
            pass

    shutil.rmtree(tree, onerror=writable_then_retry)
