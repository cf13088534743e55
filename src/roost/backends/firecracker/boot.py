"""What a Firecracker workspace's record keeps: its VMM, how to boot it again, its jail.

The files the VMM uses (disk, sockets, kernel and initramfs copies) live at
fixed names in the workspace directory (see `vm`), so the record never
says where they are: a path read back from a record is never followed.

Imports: backends.firecracker.jail, errors and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.backends.firecracker.jail import JailSettings
from roost.errors import BackendError

DEFAULT_EXEC_NAME = "firecracker"


@dataclass(frozen=True)
class BootPlan:
    """Everything a boot needs, kept in the workspace's record so `start` can boot again."""

    kernel: str
    initrd: str | None
    boot_args: str
    agent_port: int
    vcpus: int = 2
    mem_mib: int = 1024

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "initrd": self.initrd,
            "boot_args": self.boot_args,
            "agent_port": self.agent_port,
            "vcpus": self.vcpus,
            "mem_mib": self.mem_mib,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> BootPlan:
        """Raises: BackendError: runtime_corrupt when the record lacks a field."""
        try:
            return cls(
                kernel=str(stored["kernel"]),
                initrd=str(stored["initrd"]) if stored.get("initrd") else None,
                boot_args=str(stored["boot_args"]),
                agent_port=int(stored["agent_port"]),
                vcpus=int(stored.get("vcpus", 2)),
                mem_mib=int(stored.get("mem_mib", 1024)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(
                f"the workspace's VM record lacks {exc}", code="runtime_corrupt", hint="recreate the workspace"
            ) from None


@dataclass(frozen=True)
class FirecrackerBoot:
    """A Firecracker workspace's boot: whose VM it is, its VMM's pid (None once stopped), the
    plan to boot it again, the jailer settings it runs under (None: not jailed) with the name
    of the binary its jail is named after, and whether the guest powered off by itself when it
    was last stopped (None: not stopped since it booted), and how it was created."""

    workspace: str
    vmm_pid: int | None
    plan: BootPlan
    jail: JailSettings | None = None
    exec_name: str = DEFAULT_EXEC_NAME
    stopped_cleanly: bool | None = None
    created_by: str | None = None  # "template <name>" (resumed from a snapshot) or "cold boot"

    def to_json(self) -> dict[str, Any]:
        # Flat, as version 1 records kept the plan beside the pid.
        return {
            "workspace": self.workspace,
            "vmm_pid": self.vmm_pid,
            **self.plan.to_json(),
            "jail": None if self.jail is None else {**self.jail.to_json(), "exec_name": self.exec_name},
            "stopped_cleanly": self.stopped_cleanly,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> FirecrackerBoot:
        """Raises: ValueError, BackendError (runtime_corrupt): `stored` is not a Firecracker workspace's record."""
        workspace, pid, clean = stored.get("workspace"), stored.get("vmm_pid"), stored.get("stopped_cleanly")
        if not isinstance(workspace, str) or not workspace:
            raise ValueError("the VM's record names no workspace")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            raise ValueError(f"the VMM's pid {pid!r} is not a number")
        if clean is not None and not isinstance(clean, bool):
            raise ValueError(f"stopped_cleanly {clean!r} is not true or false")
        jail = stored.get("jail")
        exec_name = jail.get("exec_name") if isinstance(jail, dict) else None
        return cls(
            workspace,
            pid,
            BootPlan.from_json(stored),
            JailSettings.from_json(jail),
            exec_name if isinstance(exec_name, str) and exec_name else DEFAULT_EXEC_NAME,
            clean,
            created_by if isinstance(created_by := stored.get("created_by"), str) else None,
        )
