"""Firecracker backend latencies.

- `firecracker_launch_to_configured`: roost's own path with the real, pinned binary
  (`scripts/fetch-firecracker.sh`): spawn the VMM, wait for its API socket, then configure
  machine, kernel + initrd, root drive and vsock, stopping right before InstanceStart.
  Runs anywhere the binary runs (no KVM needed). Target: p50 < 50 ms.
- `firecracker_create_to_first_exec_cold`: SDK `create_workspace` + `exec(["true"])`,
  target p50 < 1 s; and `..._from_snapshot`, target p50 < 150 ms. Both need a host whose
  KVM boots stock guest kernels and are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._harness import ENV, Result, Settings, measured, skipped, summarize, temp_home

REPO = Path(__file__).resolve().parents[1]
CACHED_BINARY = REPO / ".cache" / "firecracker" / "firecracker"
CONFIGURE_DESCRIPTION = "spawn firecracker, API socket ready, configure machine/boot/drive/vsock (no InstanceStart)"
COLD_DESCRIPTION = "SDK create_workspace + exec(['true']), firecracker backend, cold boot"
SNAPSHOT_DESCRIPTION = "SDK create_workspace + exec(['true']), firecracker backend, resumed from a template's snapshot"


def _binary() -> Path | None:
    explicit = os.environ.get("ROOST_FIRECRACKER")
    if explicit:
        return Path(explicit) if os.access(explicit, os.X_OK) else None
    if os.access(CACHED_BINARY, os.X_OK):
        return CACHED_BINARY
    found = shutil.which("firecracker")
    return Path(found) if found else None


def launch_to_configured(settings: Settings) -> Result:
    from roost.backends.firecracker.vm import BootPlan, MicroVm

    binary = _binary()
    if binary is None:
        return skipped(CONFIGURE_DESCRIPTION, "no firecracker binary: run scripts/fetch-firecracker.sh")
    runs, warmup = settings.n(30, 3), settings.n(3, 1)
    spawn_ms: list[float] = []
    configure_ms: list[float] = []
    total_ms: list[float] = []
    work = Path(tempfile.mkdtemp(prefix="roost-bench-fc-"))
    try:
        kernel = work / "vmlinux"
        kernel.write_bytes(b"\x7fELF" + b"\0" * 60)  # opened by the API, never booted
        plan = BootPlan(str(kernel), None, "console=ttyS0", 1024, vcpus=2, mem_mib=1024)
        for index in range(warmup + runs):
            ws_dir = work / f"ws{index}"
            ws_dir.mkdir()
            with open(ws_dir / "disk.ext4", "wb") as disk:
                disk.truncate(64 << 20)
            vm = MicroVm(ws_dir, f"ws-bench{index:06d}")
            try:
                start = time.perf_counter()
                vm.launch(binary, plan)
                ready = time.perf_counter()
                with vm.api() as api:
                    vm.configure(api, plan)
                done = time.perf_counter()
            finally:
                vm.kill()
            if index >= warmup:
                spawn_ms.append((ready - start) * 1000)
                configure_ms.append((done - ready) * 1000)
                total_ms.append((done - start) * 1000)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return measured(
        CONFIGURE_DESCRIPTION,
        "ms",
        summarize(total_ms),
        "p50",
        "<",
        50.0,
        runs=runs,
        api_socket_ready_ms=summarize(spawn_ms),
        configure_ms=summarize(configure_ms),
        binary=str(binary),
    )


def _why_no_vms() -> str | None:
    from roost.backends import get_backend

    check = get_backend("firecracker").availability()
    return None if check.available else f"firecracker workspaces cannot run here: {check.reason}"


def _create_to_first_exec(settings: Settings, description: str, templates: bool, target_ms: float) -> Result:
    from roost import Roost
    from roost.backends.firecracker.template import TEMPLATES_ENV

    reason = _why_no_vms()
    if reason:
        return skipped(description, reason)
    runs, warmup = settings.n(10, 2), settings.n(1, 1)  # the first create of the snapshot path builds the template
    samples = []
    before = os.environ.get(TEMPLATES_ENV)
    os.environ[TEMPLATES_ENV] = "1" if templates else "0"
    try:
        with temp_home() as home, Roost(home=home, backend="firecracker") as roost:
            for index in range(warmup + runs):
                start = time.perf_counter()
                ws = roost.create_workspace(ENV, ephemeral=False)
                ws.exec(["true"])
                elapsed = (time.perf_counter() - start) * 1000
                ws.delete(force=True)
                if index >= warmup:
                    samples.append(elapsed)
    finally:
        if before is None:
            os.environ.pop(TEMPLATES_ENV, None)
        else:
            os.environ[TEMPLATES_ENV] = before
    return measured(description, "ms", summarize(samples), "p50", "<", target_ms, runs=runs)


def create_to_first_exec_cold(settings: Settings) -> Result:
    return _create_to_first_exec(settings, COLD_DESCRIPTION, templates=False, target_ms=1000.0)


def create_to_first_exec_from_snapshot(settings: Settings) -> Result:
    return _create_to_first_exec(settings, SNAPSHOT_DESCRIPTION, templates=True, target_ms=150.0)
