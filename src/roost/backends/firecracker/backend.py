"""The firecracker backend: each workspace is a KVM microVM with roost's agent inside.

Create copies the environment's guest disk (copy-on-write where the
filesystem allows), starts one Firecracker process per workspace (detached,
carrying the workspace marker, API socket in the workspace directory),
configures it over its API (machine, kernel + initrd, root drive, network
device, vsock), boots it and waits, under a boot deadline, until the agent
answers over vsock. Everything after that goes through the agent like every other backend.
The VMM runs in a network namespace of its own holding the guest's TAP
device; roost's network gateway joins it there (`network_namespace_pid`) to
hold the guest to its policy, exactly as it joins a sandbox's namespace.

The guest image (kernel, initramfs, ext4 rootfs, kernel command line, the
agent's vsock port) comes in the create spec: orchestration builds it (see
`roost.workspace.boot_images`) before the workspace exists.

Imports: backends.base, backends.kvm, backends.firecracker.*, errors, models,
rpc and the standard library. Never another backend, nor images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from roost.backends.base import Availability, CreateSpec, GuestBootImage, HostUsage, ImageKind, OfflineDisk
from roost.backends.firecracker.binary import (
    find_firecracker,
    firecracker_version,
    guest_arch,
    require_supported_version,
)
from roost.backends.firecracker.boot import BootPlan, FirecrackerBoot
from roost.backends.kvm import KvmReport, probe_kvm
from roost.config import default_home
from roost.errors import CHECK_WORKSPACE, AgentError, BackendError, operator_remedy
from roost.models import Protection

if TYPE_CHECKING:
    from roost.backends.firecracker.jail import JailSettings
    from roost.backends.firecracker.vm import MicroVm
    from roost.rpc import AgentClient

BOOT_TIMEOUT = 20.0
STOP_GRACE = 10.0
FLUSH_TIMEOUT = 5.0
DEFAULT_VCPUS = 2
DEFAULT_MEM_MIB = 1024


def _home_of(ws_dir: Path) -> Path:
    """`$ROOST_HOME` for a workspace directory (`<home>/workspaces/<id>`)."""
    return ws_dir.parent.parent


def _positive(resources: dict[str, Any], key: str, default: int) -> int:
    value = resources.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


class FirecrackerBackend:
    """Workspaces as Firecracker microVMs (needs KVM that boots stock guest kernels).

    Every argument has a working default; they exist for `roost doctor` (`home`: whose
    `runtime install` to look at) and for tests and embedders (`binary`, `kvm`, `jail`).
    """

    name = "firecracker"
    isolated = True
    image_kind: ImageKind = "guest"
    # Each VMM has a network namespace of its own with the guest's TAP in it (see `netns`).
    network_refusal: str | None = None
    proxy_refusal: str | None = "the guest's trust store does not hold the workspace's CA yet"

    def __init__(
        self,
        *,
        home: Path | None = None,
        binary: Path | None = None,
        kvm: Callable[[], KvmReport] = probe_kvm,
        boot_timeout: float = BOOT_TIMEOUT,
        stop_grace: float = STOP_GRACE,
        jail: JailSettings | Literal["env"] | None = "env",
        templates: bool | None = None,
    ) -> None:
        """`templates`: create from a memory snapshot of the image's template VM (None: as
        `ROOST_FC_TEMPLATES` says, on unless it is 0)."""
        self._templates = templates
        self._home = home
        self._jail = jail
        self._binary = binary
        self._kvm = kvm
        self.boot_timeout = boot_timeout
        self.stop_grace = stop_grace

    # -- what this host can do --------------------------------------------------------
    def find_binary(self, home: Path | None = None) -> tuple[Path | None, str]:
        if self._binary is not None:
            if os.access(self._binary, os.X_OK):
                return self._binary, "given"
            return None, f"{self._binary} is not an executable file"
        return find_firecracker(home or self._home)

    def require_binary(self, home: Path | None = None) -> Path:
        """The binary to launch: found, new enough, on a host roost has a guest for.

        Raises:
            BackendError: firecracker_missing, firecracker_broken, firecracker_too_old, unsupported_arch.
        """
        guest_arch()
        binary, where = self.find_binary(home)
        if binary is None:
            raise BackendError(
                where, code="firecracker_missing", remedy=operator_remedy("install it", "runtime_install")
            )
        require_supported_version(firecracker_version(binary), f"{where}: {binary}")
        return binary

    def jail_settings(self, binary: Path) -> JailSettings | None:
        """Jailer mode for new workspaces: as given, else as `ROOST_JAILER` asks (None: off).

        Raises:
            BackendError: jailer_missing, jailer_needs_root, jailer_config_invalid.
        """
        if self._jail != "env":
            return self._jail
        from roost.backends.firecracker.jail import settings_from_env

        return settings_from_env(os.environ, binary)

    def availability(self) -> Availability:
        kvm = self._kvm()
        binary, where = self.find_binary()
        if binary is None:
            found = where
        else:
            try:
                guest_arch()
                version = firecracker_version(binary)
                require_supported_version(version, f"{where}: {binary}")
                found = f"firecracker v{version} ({where}: {binary}); {self._jail_text(binary)}"
            except BackendError as exc:
                return Availability(self.name, False, exc.message, isolated=True)
        if binary is None or not kvm.can_boot_guests:
            problems = [] if binary is not None else [found]
            if not kvm.can_boot_guests:
                problems.append(f"KVM {kvm.kind}: {kvm.detail}")
            prefix = f"{found}, but " if binary is not None else ""
            return Availability(self.name, False, prefix + "; ".join(problems), isolated=True)
        return Availability(self.name, True, f"{found}; KVM: {kvm.detail}; {self._creates_text()}", isolated=True)

    def _creates_text(self) -> str:
        """How creates start a VM, for `roost doctor`: from templates or by cold boots, and why."""
        from roost.backends.firecracker.template import TEMPLATES_ENV, TemplateStore, templates_enabled

        if not (templates_enabled() if self._templates is None else self._templates):
            return f"creates: cold boots ({TEMPLATES_ENV}=0)"
        store = TemplateStore(self._home or default_home())
        failed = store.failed_names()
        text = f"creates: resume a template's memory snapshot ({len(store.names())} made"
        return text + (f", {len(failed)} failed and boot cold: see {store.root}/*.failed)" if failed else ")")

    def _jail_text(self, binary: Path) -> str:
        """Jailer mode in a few words, for `roost doctor`.

        Raises:
            BackendError: ROOST_JAILER asks for what this host cannot do.
        """
        from roost.backends.firecracker.jail import mount_refuses_devices

        settings = self.jail_settings(binary)
        if settings is None:
            return "jailer: off"
        home = self._home or default_home()
        if mount_refuses_devices(home):
            raise BackendError(
                f"jailer mode cannot work here: {home} is on a nodev mount, where the jailed VMM could not open "
                "the /dev/kvm the jailer makes",
                code="jail_nodev",
            )
        cgroups = "no cgroups" if settings.cgroup_version is None else f"cgroup v{settings.cgroup_version}"
        return f"jailer: {settings.jailer} (uid {settings.uid}, gid {settings.gid}, {cgroups})"

    # -- lifecycle ----------------------------------------------------------------------
    def read_boot(self, stored: dict[str, Any]) -> FirecrackerBoot:
        return FirecrackerBoot.from_json(stored)

    @staticmethod
    def _vm(ws_dir: Path, boot: FirecrackerBoot | None, ws_id: str | None = None) -> MicroVm:
        """The VM `boot` describes (None: one never booted, found by `ws_id` or the directory's name)."""
        from roost.backends.firecracker.jail import Jail
        from roost.backends.firecracker.vm import MicroVm

        if boot is None:
            return MicroVm(ws_dir, ws_id or ws_dir.name)
        ws_id = ws_id or boot.workspace
        jail = None if boot.jail is None else Jail(ws_dir, ws_id, boot.jail, boot.exec_name)
        return MicroVm(ws_dir, ws_id, boot.vmm_pid, jail)

    @staticmethod
    def _booted(vm: MicroVm, plan: BootPlan) -> FirecrackerBoot:
        """What the record keeps of a VM that has just booted."""
        if vm.jail is None:
            return FirecrackerBoot(vm.ws_id, vm.pid, plan)
        return FirecrackerBoot(vm.ws_id, vm.pid, plan, vm.jail.settings, vm.jail.exec_name)

    def create(self, ws_dir: Path, spec: CreateSpec) -> FirecrackerBoot:
        from roost.backends.firecracker.jail import Jail
        from roost.backends.firecracker.vm import (
            INITRD,
            KERNEL,
            MicroVm,
            check_kernel,
            copy_disk,
            keep_boot_file,
        )

        home = _home_of(ws_dir)
        binary = self.require_binary(home)
        image = spec.guest_image
        if image is None:
            raise BackendError("the firecracker backend needs a guest image", code="image_missing")
        check_kernel(str(image.kernel))
        plan = BootPlan(
            kernel=str(ws_dir / KERNEL),
            initrd=str(ws_dir / INITRD) if image.initrd else None,
            boot_args=image.boot_args,
            agent_port=image.agent_vsock_port,
            vcpus=_positive(spec.resources, "vcpus", DEFAULT_VCPUS),
            mem_mib=_positive(spec.resources, "mem_mib", DEFAULT_MEM_MIB),
        )
        settings = self.jail_settings(binary)
        jail = None if settings is None else Jail(ws_dir, spec.ws_id, settings, binary.name)
        vm = MicroVm(ws_dir, spec.ws_id, jail=jail)
        try:
            # The workspace keeps its own kernel and initramfs: a later image prune cannot strand it.
            keep_boot_file(Path(image.kernel), ws_dir / KERNEL, code="kernel_missing")
            if image.initrd:
                keep_boot_file(Path(image.initrd), ws_dir / INITRD, code="initrd_missing")
            created_by = self._resume_from_template(vm, binary, image, plan)
            if created_by is None:
                copy_disk(Path(image.rootfs), vm.disk)
                vm.launch(binary, plan)
                vm.boot(plan, self.boot_timeout)
        except BaseException:
            self._discard(vm, keep_disk=False)
            raise
        return dataclasses.replace(self._booted(vm, plan), created_by=created_by or "cold boot")

    def _resume_from_template(self, vm: MicroVm, binary: Path, image: GuestBootImage, plan: BootPlan) -> str | None:
        """Make `vm` a clone of its image's template (built first if there is none yet); None when
        the create must boot cold instead (templates off, the template cannot be made, or the clone
        failed: the reason is kept with the template and said by `doctor`).

        Raises:
            BackendError: the clone failed in a way a cold boot would meet too (disk_copy_failed).
        """
        from roost.backends.firecracker.template import TemplateStore, resume_clone, template_name, templates_enabled

        if not (templates_enabled() if self._templates is None else self._templates):
            return None
        store = TemplateStore(_home_of(vm.ws_dir))
        # The image's own kernel and initrd (the workspace's are links to them): one template per image and size.
        image_plan = dataclasses.replace(
            plan, kernel=str(image.kernel), initrd=str(image.initrd) if image.initrd else None
        )
        name = template_name(image_plan, Path(image.rootfs), firecracker_version(binary))
        with store.building(name):
            template = store.find(name)
            if template is None and store.failure(name) is None:
                try:
                    template = store.build(name, binary, image_plan, Path(image.rootfs), self.boot_timeout)
                except (BackendError, AgentError):
                    return None  # noted in <name>.failed; this and later creates boot cold
        if template is None:
            return None
        try:
            resume_clone(vm, template, binary, plan, self.boot_timeout)
        except (BackendError, AgentError) as exc:
            if exc.code == "disk_copy_failed":
                raise
            self._discard(vm, keep_disk=False, keep_boot_files=True)
            store.retire(name, f"a clone failed: {exc.code}: {exc.message}")
            return None
        return f"template {name}"

    @staticmethod
    def _discard(vm: MicroVm, *, keep_disk: bool, keep_boot_files: bool = False) -> None:
        """Undo a failed boot without hiding why it failed."""
        from roost.backends.firecracker.vm import DISK, INITRD, KERNEL

        try:
            vm.kill()
        except BackendError:
            pass  # the boot's own error says more; `workspace delete` retries the kill
        if not keep_disk:
            for name in (DISK,) if keep_boot_files else (DISK, KERNEL, INITRD):
                (vm.ws_dir / name).unlink(missing_ok=True)
                (vm.ws_dir / f"{name}.partial").unlink(missing_ok=True)

    def connect(self, ws_dir: Path, boot: FirecrackerBoot | None, *, timeout: float) -> AgentClient:
        vm = self._vm(ws_dir, boot)
        dead = vm.death_reason()
        if dead is not None or boot is None:
            raise AgentError(
                f"the workspace VM is not running: {dead}",
                code="agent_unreachable",
                remedy=CHECK_WORKSPACE,
            )
        return vm.connector(boot.plan.agent_port).open_client(timeout, vm.identity)

    def health(self, ws_dir: Path, boot: FirecrackerBoot | None) -> str | None:
        vm = self._vm(ws_dir, boot)
        dead = vm.death_reason()
        if dead is not None:
            return dead
        try:
            with vm.api(timeout=1.0) as api:
                state = api.instance_info().get("state")
        except BackendError as exc:
            return f"the VMM does not answer on its API socket: {exc.message}"
        if state not in ("Running", "Paused"):
            return f"the VM is not running (Firecracker says {state!r})"
        return None

    def content_store(self) -> None:
        return None  # inside the VM's disk: a fork streams the contents

    def offline_disk(self, ws_dir: Path) -> OfflineDisk:
        from roost.backends.firecracker.vm import DISK

        return OfflineDisk(image=ws_dir / DISK)  # staged into a jail by a hard link, so this is the one disk

    def protections(self, boot: FirecrackerBoot | None) -> tuple[Protection, ...]:
        jail: JailSettings | None
        if boot is None:
            binary, _ = self.find_binary()
            try:
                jail = None if binary is None else self.jail_settings(binary)
            except BackendError as exc:
                return (
                    Protection("virtualisation", True, "a KVM microVM with its own kernel (Firecracker)"),
                    Protection("jailer", False, exc.message),
                )
        else:
            jail = boot.jail
        if jail is not None:
            jailed = Protection(
                "jailer",
                True,
                f"the VMM is chrooted, runs as uid {jail.uid} in its own pid namespace"
                + ("" if jail.cgroup_version is None else f", in cgroup v{jail.cgroup_version} limits"),
            )
        else:
            jailed = Protection("jailer", False, "off: the VMM runs as roost's user (set ROOST_JAILER=1 as root)")
        return (Protection("virtualisation", True, "a KVM microVM with its own kernel (Firecracker)"), jailed)

    def usage(self, ws_dir: Path, boot: FirecrackerBoot) -> HostUsage:
        """Nothing the host counts: the VM is the workspace, and its agent reports the whole of it."""
        return HostUsage("vm")

    def rootfs_id_offset(self, boot: FirecrackerBoot | None) -> tuple[int, int]:
        return 0, 0  # the guest has its own kernel and its own ids

    def network_namespace_pid(self, boot: FirecrackerBoot | None) -> int | None:
        if boot is None:
            return None
        # Liveness and namespace are read from /proc: the workspace's directory plays no part.
        return self._vm(Path(), boot).network_namespace_pid()

    def destroy(self, ws_dir: Path, ws_id: str, boot: FirecrackerBoot | None) -> None:
        # No clean guest shutdown first: the disk goes with the directory, so
        # there is nothing to flush, and teardown must not wait out a grace period.
        vm = self._vm(ws_dir, boot, ws_id)
        try:
            vm.kill()
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None

    def discard_files(self, ws_dir: Path, boot: FirecrackerBoot | None) -> None:
        return None  # the guest writes only into its disk image, a file roost owns

    # -- stop and start (for `roost workspace stop|start`) ----------------------------
    def stop(self, ws_dir: Path, boot: FirecrackerBoot) -> FirecrackerBoot:
        """Wind the guest down (sync; services stopped, shells closed), power it off
        (killing it after the grace period), keep the disk.

        Returns what the record keeps: `vmm_pid` None, `stopped_cleanly` whether the guest shut down on its own.

        Raises:
            BackendError: process_survived, disk_flush_failed.
        """
        vm = self._vm(ws_dir, boot)
        clean = False
        if vm.running():
            vm.wind_down(boot.plan.agent_port, FLUSH_TIMEOUT)
            clean = vm.shut_down(self.stop_grace)
        else:
            vm.kill()  # strays and stale sockets only
        vm.flush_disk()  # the guest's sync reached Firecracker (Writeback); this takes it to the host disk
        return dataclasses.replace(boot, vmm_pid=None, stopped_cleanly=clean)

    def start(self, ws_dir: Path, spec: CreateSpec, boot: FirecrackerBoot) -> FirecrackerBoot:
        """Boot a stopped workspace again from its own disk (stale sockets are removed first).

        Returns what the record keeps.

        Raises:
            BackendError: firecracker_missing, disk_missing, disk_corrupt, kernel_missing,
                vmm_fault, vmm_died, boot_timeout.
        """
        from roost.backends.firecracker.vm import check_disk, check_kernel

        vm = self._vm(ws_dir, boot)
        if vm.running():
            return boot
        vm.kill()
        plan = boot.plan
        check_disk(vm.disk)
        check_kernel(plan.kernel)
        binary = self.require_binary(_home_of(ws_dir))
        if vm.jail is not None:
            vm.jail.clear()
            vm.jail.exec_name = binary.name  # the jail is made anew, named after the binary of this boot
        try:
            vm.launch(binary, plan)
            vm.boot(plan, self.boot_timeout)
        except BaseException:
            self._discard(vm, keep_disk=True)
            raise
        return dataclasses.replace(self._booted(vm, plan), created_by=boot.created_by)
