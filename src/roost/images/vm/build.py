"""The guest image a microVM boots for an environment: `ensure_guest_image(cache, env) -> GuestImage`.

Puts together the env's rootfs (images.manager), the guest kernel and its
modules (kernel.py), busybox-static, the initramfs (initramfs.py) and the
root disk (disk.py). Everything lands in `<cache>/guest/images/<key>/`,
where the key hashes every input: the kernel package's sha256 and module
set, busybox's sha256, the initramfs script, roost's init and agent code,
the env's rootfs key, the disk headroom and, for an image without a usable
python3, roost's python bundle (launch.py: how PID 1 and the agent start). An image
directory appears only by rename from the cache's tmp/ once complete, so a
half-built guest image is never used. Builds are serialised across
processes by the cache's `guest` lock.

Imports: roost (to find its package directory), images.* (cache, manager, build, vm.*), errors
and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roost.config import package_dir
from roost.errors import ImageError
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache, check_free_space
from roost.images.manager import ensure_image
from roost.images.vm.debs import AptSource, unpack
from roost.images.vm.disk import HEADROOM_BYTES, build_disk, bytecode, files_digest, guest_files
from roost.images.vm.initramfs import INIT_SCRIPT, build_initramfs, init_script, is_static_elf
from roost.images.vm.kernel import KernelBundle, ensure_kernel
from roost.images.vm.launch import GuestLaunch, guest_launch

AGENT_VSOCK_PORT = 1024
# reboot=k: the guest ends the VM with a keyboard-controller reset, which Firecracker turns into
# an exit (it ignores power-off on x86); roost's init reboots by default for that reason.
# quiet: every console byte is a VM exit; errors and panics still print.
# i8042.*: skip probing the PS/2 aux port and multiplexer Firecracker does not have (tens of ms
# of boot); PNP stays, as Firecracker's SendCtrlAltDel arrives through the i8042 keyboard.
BOOT_ARGS = (
    "console=ttyS0 reboot=k panic=1 pci=off quiet i8042.noaux i8042.nomux i8042.dumbkbd "
    f"roost.agent=vsock:{AGENT_VSOCK_PORT}"
)
BUSYBOX_PACKAGE = "busybox-static"
FORMAT_VERSION = "1"
MANIFEST = "guest.json"
KERNEL_FILE = "vmlinux"
INITRD_FILE = "initramfs.cpio.gz"
DISK_FILE = "rootfs.ext4"
# Older guest images of one env kept beside the newest (each disk is ~250 MB on disk).
KEEP_PER_ENV = 2
# Staging the disk needs the env tree's metadata (a link farm) plus the image's used blocks.
BUILD_SPACE_BYTES = 800 * 1024 * 1024
_STEPS = 6


@dataclass(frozen=True)
class GuestImage:
    """What a microVM backend boots: read-only, shared; copy `rootfs` per workspace.

    `kernel` is an uncompressed ELF vmlinux, `initrd` a gzip'd cpio, `rootfs` an ext4 image.
    Append to `boot_args` rather than replacing it; roost's init reads `roost.agent=` (the last
    one wins: `vsock:PORT` or `serial[:NAME|PATH]`) and `roost.halt=reboot|poweroff`.
    """

    kernel: Path
    initrd: Path
    rootfs: Path
    boot_args: str
    agent_vsock_port: int


def _package_dir() -> Path:
    return package_dir()


def image_key(
    env_key: str, kernel: KernelBundle, busybox_sha256: str, code_digest: str, launch: GuestLaunch | None = None
) -> str:
    """The guest image's cache key; `launch` adds the initramfs's hand-over and the bundle, if any."""
    parts = (
        FORMAT_VERSION,
        env_key,
        kernel.key,
        busybox_sha256,
        hashlib.sha256((init_script(launch.root_init) if launch else INIT_SCRIPT).encode()).hexdigest(),
        code_digest,
        BOOT_ARGS,
        str(HEADROOM_BYTES),
        *(launch.key_parts() if launch else ()),
    )
    return "sha256-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_guest_image(directory: Path) -> GuestImage | None:
    """The complete guest image in `directory`, or None."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
        image = GuestImage(
            kernel=directory / KERNEL_FILE,
            initrd=directory / INITRD_FILE,
            rootfs=directory / DISK_FILE,
            boot_args=BOOT_ARGS,
            agent_vsock_port=AGENT_VSOCK_PORT,
        )
        if data.get("format") != FORMAT_VERSION:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(path.is_file() for path in (image.kernel, image.initrd, image.rootfs)):
        return None
    return image


def _busybox(apt: AptSource, cache: ImageCache, staged: Path) -> tuple[Path, str]:
    """(busybox-static binary unpacked into `staged`, its package version).

    Raises:
        ImageError: package_unavailable, download_failed, busybox_unusable.
    """
    ref, _ = apt.resolve(BUSYBOX_PACKAGE)
    deb = apt.fetch(ref, cache.root / "guest" / "debs")
    unpack(deb.path, staged / "busybox")
    binary = staged / "busybox" / "bin" / "busybox"
    if not is_static_elf(binary):
        raise ImageError(f"{BUSYBOX_PACKAGE} {ref.version} has no static bin/busybox", code="busybox_unusable")
    return binary, ref.version


def prune_older(images_dir: Path, env: str, current: str, keep: int = KEEP_PER_ENV) -> list[str]:
    """Remove all but the `keep` newest guest images of `env` (`current` always stays); return the removed keys.

    Workspaces run on copies of a guest disk, so only builds still to come would miss them,
    and those build the image they need.
    """
    found: list[tuple[str, str]] = []
    for directory in images_dir.iterdir() if images_dir.is_dir() else ():
        try:
            data = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("env") == env and directory.name != current:
            found.append((str(data.get("created_at", "")), directory.name))
    found.sort(reverse=True)
    removed = []
    for _created, key in found[max(keep - 1, 0) :]:
        shutil.rmtree(images_dir / key, ignore_errors=True)
        removed.append(key)
    return removed


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _manifest(
    key: str, env: str, env_key: str, kernel: KernelBundle, built: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """What `guest.json` says of a guest image: its key, what it was made from, and how it was built."""
    return {
        "format": FORMAT_VERSION,
        "key": key,
        "env": env,
        "env_key": env_key,
        "kernel": {
            "package": kernel.package,
            "version": kernel.version,
            "release": kernel.release,
            "compression": kernel.compression,
            "modules": list(kernel.load_order),
        },
        **built,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "build_seconds": round(seconds, 2),
    }


def ensure_guest_image(
    cache: ImageCache, env: str, progress: ProgressFn | None = None, env_image: EnvImage | None = None
) -> GuestImage:
    """The guest image for `env` (kernel, initramfs, ext4 root disk), built into the cache if missing.

    `env_image` is the env's rootfs when the caller has it already (a custom env, flattened);
    else the catalog env's image is pulled or built.

    Raises:
        ImageError: the env image cannot be had (see images.manager.ensure_image), or the guest
            kernel/busybox packages cannot be fetched (package_unavailable, download_failed,
            digest_mismatch), or the build fails (vmlinux_not_found, module_missing,
            disk_build_failed, disk_full, no_mkfs), or the python bundle cannot be built
            (bundle_failed).
        NotFound: env_not_found.
    """

    def step(text: str, done: int) -> None:
        if progress:
            progress(text, done, _STEPS)

    step(f"environment {env}", 0)
    if env_image is None:
        env_image = ensure_image(
            cache, env, (lambda text, _d, _t: step(f"environment {env}: {text}", 0)) if progress else None
        )
    rootfs = cache.rootfs(env_image.key)
    launch = guest_launch(cache, env, env_image.interpreter, rootfs)
    apt = AptSource(memo=cache.root / "guest" / "apt-resolved.json")
    with cache.lock("guest"):
        kernel = ensure_kernel(cache, apt, lambda text: step(text, 1))
        busybox_ref, _ = apt.resolve(BUSYBOX_PACKAGE)
        sources = guest_files(_package_dir(), launch.launcher)
        files = sources + bytecode(sources, launch.bytecode_tag)
        key = image_key(env_image.key, kernel, busybox_ref.sha256, files_digest(files), launch)
        final = cache.root / "guest" / "images" / key
        cached = load_guest_image(final)
        if cached is not None:
            step("done", _STEPS)
            return cached
        check_free_space(cache.root, BUILD_SPACE_BYTES)
        started = time.monotonic()
        with cache.staging("guest") as staged:
            step("fetching busybox-static", 2)
            busybox, busybox_version = _busybox(apt, cache, staged)
            out = staged / "image"
            out.mkdir()
            step("writing the initramfs", 3)
            modules = [(name, kernel.module(name)) for name in kernel.load_order]
            (out / INITRD_FILE).write_bytes(build_initramfs(busybox, modules, init_script(launch.root_init)))
            _link_or_copy(kernel.vmlinux, out / KERNEL_FILE)
            step("building the root disk (mkfs.ext4)", 4)
            disk_bytes = build_disk(rootfs, files, staged, out / DISK_FILE, launch.bundle)
            os.chmod(out / DISK_FILE, 0o444)
            built = {"busybox": busybox_version, "disk_bytes": disk_bytes, "python": launch.interpreter}
            manifest = _manifest(key, env, env_image.key, kernel, built, time.monotonic() - started)
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            step("committing", 5)
            final.parent.mkdir(parents=True, exist_ok=True)
            if not final.exists():
                os.rename(out, final)
        prune_older(final.parent, env, key)
        image = load_guest_image(final)
        if image is None:
            raise ImageError(f"the guest image at {final} is incomplete", code="image_incomplete")
        step("done", _STEPS)
        return image
