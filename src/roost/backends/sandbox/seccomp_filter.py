"""The sandbox's seccomp filter: system calls a workspace never needs, refused.

Modelled on the default profiles of Docker and Podman, written as a deny
list over an allow-by-default filter: everything a normal Linux userland
does keeps working, and what only serves to attack or reconfigure the
shared kernel fails with EPERM (or ENOSYS where callers are expected to
fall back, as glibc does from clone3 to clone). The filter is compiled by
libseccomp (through `pyseccomp`) into classic BPF, which bubblewrap loads
just before it runs the agent (`--seccomp FD`), so every process of the
workspace inherits it and none can remove it.

A deny list lets through what it does not name, system calls newer than
libseccomp included (e.g. `open_tree_attr`, Linux 6.15, unknown to Debian
12's libseccomp 2.5.4). That is a deliberate trade for compatibility: the
user namespace and the missing `CAP_SYS_ADMIN` are what stop those from
reaching the host; the filter narrows the kernel surface behind them.

Imports: errors and the standard library (pyseccomp is loaded lazily).
"""

from __future__ import annotations

import errno
import os
import platform
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from roost.errors import BackendError

# What each group defends, for docs/security.md and `roost doctor`.
DENIED: dict[str, tuple[str, ...]] = {
    "kernel keyrings (shared per host uid)": ("add_key", "keyctl", "request_key"),
    "kernel extension and tracing": ("bpf", "perf_event_open", "lookup_dcookie", "fanotify_init"),
    "kernel modules and kexec": (
        "init_module",
        "finit_module",
        "delete_module",
        "create_module",
        "query_module",
        "get_kernel_syms",
        "kexec_load",
        "kexec_file_load",
    ),
    "file handles that bypass paths": ("open_by_handle_at", "name_to_handle_at"),
    "page-fault handling from user space": ("userfaultfd",),
    "the system clock": (
        "clock_settime",
        "clock_adjtime",
        "settimeofday",
        "stime",
        "clock_settime64",
        "clock_adjtime64",
    ),
    "host administration": (
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "syslog",
        "quotactl",
        "quotactl_fd",
        "nfsservctl",
        "vhangup",
        "sysfs",
        "_sysctl",
        "ustat",
        "uselib",
    ),
    "raw hardware access": ("iopl", "ioperm", "vm86", "vm86old"),
    "mounts": (
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
    ),
    "new namespaces (nested user namespaces widen the kernel's attack surface)": ("unshare", "setns"),
}
# Refused with ENOSYS so callers fall back: glibc retries clone3 as clone
# (whose flags the filter can inspect), runtimes drop io_uring for epoll.
UNAVAILABLE: tuple[str, ...] = ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register")
# clone(2) flags that make namespaces; clone is refused when any is set.
NAMESPACE_FLAGS: tuple[int, ...] = (
    0x00000080,  # CLONE_NEWTIME
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


@dataclass(frozen=True)
class SeccompStatus:
    """Whether the filter can be built here, and why not."""

    available: bool
    reason: str


def _load() -> ModuleType:
    """pyseccomp, which loads libseccomp when imported.

    Raises:
        BackendError: seccomp_unavailable when libseccomp is missing.
    """
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as exc:
        raise BackendError(
            f"cannot load libseccomp: {exc}",
            code="seccomp_unavailable",
            hint="install Debian's libseccomp2 (apt-get install libseccomp2)",
        ) from None
    return pyseccomp


def _add(rules: object, action: int, name: str, *args: object) -> None:
    try:
        rules.add_rule(action, name, *args)  # type: ignore[attr-defined]
    except OSError as exc:
        raise BackendError(f"libseccomp refused the rule for {name}: {exc}", code="seccomp_unavailable") from None


@cache
def compile_filter() -> bytes:
    """The filter as classic BPF, ready for bubblewrap's `--seccomp FD`.

    Raises:
        BackendError: seccomp_unavailable when libseccomp is missing or refuses a rule.
    """
    seccomp = _load()
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    if platform.machine() == "x86_64":
        # Without these, 32-bit entry points would be killed outright; with them they get the same rules.
        for arch in (seccomp.Arch.X86, seccomp.Arch.X32):
            rules.add_arch(arch)
    denied = seccomp.ERRNO(errno.EPERM)
    for names in DENIED.values():
        for name in names:
            _add(rules, denied, name)
    for name in UNAVAILABLE:
        _add(rules, seccomp.ERRNO(errno.ENOSYS), name)
    for flag in NAMESPACE_FLAGS:
        _add(rules, denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    with os.fdopen(os.memfd_create("roost-seccomp-build", os.MFD_CLOEXEC), "w+b") as program:
        rules.export_bpf(program)
        program.seek(0)
        return program.read()


def status() -> SeccompStatus:
    try:
        program = compile_filter()
    except BackendError as exc:
        return SeccompStatus(False, exc.message)
    denied = sum(len(names) for names in DENIED.values())
    return SeccompStatus(
        True, f"{denied} system calls refused, and clone with namespace flags ({len(program) // 8} BPF instructions)"
    )


def filter_fd() -> int:
    """A memfd holding the compiled filter, positioned at its start, for bubblewrap to read.

    Raises:
        BackendError: seccomp_unavailable.
    """
    program = compile_filter()
    fd = os.memfd_create("roost-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
