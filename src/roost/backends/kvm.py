"""Can this host boot a KVM guest? Read from the kernel's own reports.

`/dev/kvm` alone says little: nested PVM hosts (`kvm_pvm`) expose it but
boot only PVM-aware guest kernels, so stock kernels (Firecracker's, QEMU's
with -accel kvm) never start there. The kernel tells which KVM flavour is
loaded (/sys/module), whether the CPU offers hardware virtualisation
(vmx/svm in /proc/cpuinfo) and how it was booted (/proc/cmdline).

Imports: the standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KvmReport:
    """`kind` is `hardware` (guests boot), `pvm` (nested PVM only), or `none`."""

    kind: str
    can_boot_guests: bool
    detail: str


def _cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def probe_kvm(sys_root: Path = Path("/")) -> KvmReport:
    """Classify KVM on this host; `sys_root` lets tests supply a fake /proc and /sys."""
    device = sys_root / "dev" / "kvm"
    modules = sys_root / "sys" / "module"
    loaded = {name for name in ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm") if (modules / name).exists()}
    try:
        flags = _cpu_flags((sys_root / "proc" / "cpuinfo").read_text(errors="replace"))
    except OSError:
        flags = set()
    try:
        cmdline = (sys_root / "proc" / "cmdline").read_text(errors="replace")
    except OSError:
        cmdline = ""
    if not device.exists():
        return KvmReport("none", False, "/dev/kvm is missing (no KVM on this host)")
    hardware = bool(flags & {"vmx", "svm"})
    if "kvm_pvm" in loaded and not ({"kvm_intel", "kvm_amd"} & loaded):
        why = "kvm_pvm is loaded" + (", booted with nested_pvm=1" if "nested_pvm=1" in cmdline else "")
        return KvmReport(
            "pvm",
            False,
            f"nested PVM ({why}; the CPU offers {'vmx/svm' if hardware else 'no vmx/svm'}): "
            "only PVM guest kernels boot, so Firecracker microVMs cannot run here",
        )
    if not hardware:
        return KvmReport("none", False, "/dev/kvm exists but the CPU reports no vmx/svm virtualisation")
    if not os.access(device, os.R_OK | os.W_OK):
        return KvmReport("hardware", False, "/dev/kvm is not readable and writable by this user")
    return KvmReport("hardware", True, f"hardware virtualisation ({', '.join(sorted(loaded)) or 'kvm'})")
