"""The microVM guest image for debian:12: cold build time and sizes, and QEMU boot-to-agent time (reported; no targets).

The build goes into a temporary image cache whose debian:12 rootfs is linked from the shared
one (`.cache/images` or `$ROOST_IMAGES`; `make images` fills it), so it measures what the
guest image adds: fetching and extracting the kernel, busybox, the initramfs and the ext4
disk. Boots use QEMU with software emulation (`-M microvm -accel tcg`), the agent on a
virtio-serial port: ready line, first exec, clean power-off. KVM hosts measure Firecracker
elsewhere. `--quick` skips it; without QEMU only the build is reported.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._harness import ENV, Result, Settings, log, skipped, summarize

if TYPE_CHECKING:
    from roost.images.cache import ImageCache
    from roost.images.vm.build import GuestImage

REPO = Path(__file__).resolve().parents[1]
DESCRIPTION = f"guest image for {ENV}: cold build, sizes, and QEMU/TCG boot to a ready agent (reported only)"
BOOT_DEADLINE = 90.0
EXIT_DEADLINE = 30.0


def _shared_images() -> Path:
    from roost.config import IMAGES_ENV

    return Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")


def _temp_cache_with_env(root: Path) -> ImageCache | None:
    """An empty image cache that knows the shared cache's ENV rootfs (linked, not copied)."""
    from roost.images.cache import ImageCache

    shared = ImageCache(_shared_images())
    env_image = shared.lookup(ENV)
    if env_image is None:
        return None
    cache = ImageCache(root)
    cache.ensure()
    cache.rootfs(env_image.key).symlink_to(shared.rootfs(env_image.key), target_is_directory=True)
    (root / "envs" / f"{ENV.replace(':', '_')}.json").write_text(json.dumps(env_image.to_dict()))
    return cache


def _boot_once(image: GuestImage, workdir: Path) -> dict[str, float]:
    from roost.images.vm.qemu import QemuGuest
    from roost.rpc import AgentClient

    with QemuGuest(image, workdir) as vm:
        ready = vm.wait_ready(BOOT_DEADLINE)
        with AgentClient(vm.connect()) as client:
            client.call("exec", {"argv": ["true"]})
            first_exec = time.monotonic() - vm.started_at
            asked = time.monotonic()
            client.call("shutdown")
        code = vm.wait_exit(EXIT_DEADLINE)
        if code is None:
            raise RuntimeError("QEMU did not power off after shutdown")
        return {"ready": ready, "first_exec": first_exec, "power_off": time.monotonic() - asked}


def run(settings: Settings) -> Result:
    from roost.images.vm.build import ensure_guest_image
    from roost.images.vm.qemu import qemu_binary

    if settings.quick:
        return skipped(DESCRIPTION, "a cold guest build downloads the kernel and boots QEMU; not run with --quick")
    if shutil.which("apt-get") is None:
        return skipped(DESCRIPTION, "no apt-get: the guest kernel comes from Debian packages")
    root = Path(tempfile.mkdtemp(prefix="roost-bench-guest-"))
    try:
        cache = _temp_cache_with_env(root)
        if cache is None:
            return skipped(DESCRIPTION, f"{ENV} is not in the image cache {_shared_images()}; run `make images`")
        steps: dict[str, float] = {}
        start = time.perf_counter()

        def progress(step: str, done: int, total: int) -> None:
            if step not in steps:
                steps[step] = round(time.perf_counter() - start, 2)
                log(f"  guest build [{done}/{total}] {step}")

        image = ensure_guest_image(cache, ENV, progress)
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        ensure_guest_image(cache, ENV)
        warm_seconds = time.perf_counter() - start
        disk = image.rootfs.stat()
        result: Result = {
            "description": DESCRIPTION,
            "unit": "s",
            "build_seconds": round(build_seconds, 2),
            "warm_ensure_seconds": round(warm_seconds, 3),
            "steps_at_seconds": steps,
            "kernel_bytes": image.kernel.stat().st_size,
            "initrd_bytes": image.initrd.stat().st_size,
            "disk_bytes": disk.st_size,
            "disk_allocated_bytes": disk.st_blocks * 512,
            "target": None,
            "note": "reported only; boot times are QEMU software emulation, not Firecracker",
            "met": True,
        }
        if qemu_binary() is None:
            result["boot"] = "skipped: qemu-system-x86_64 is not installed"
            return result
        boots = [_boot_once(image, root / f"boot-{n}") for n in range(settings.n(3, 1))]
        result["boot_to_ready_seconds"] = summarize([b["ready"] for b in boots], 2)
        result["boot_to_first_exec_seconds"] = summarize([b["first_exec"] for b in boots], 2)
        result["shutdown_to_exit_seconds"] = summarize([b["power_off"] for b in boots], 2)
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)
