"""The firecracker backend: each workspace is a KVM microVM with roost's agent inside.

Create copies the environment's guest disk (copy-on-write where the
filesystem allows), starts one Firecracker process per workspace (detached,
carrying the workspace marker, API socket in the workspace directory),
configures it over its API (machine, kernel + initrd, root drive, vsock),
boots it and waits, under a boot deadline, until the agent answers over
vsock. Everything after that goes through the agent like every other backend.

The guest image (kernel, initramfs, ext4 rootfs, kernel command line, the
agent's vsock port) comes from `roost.images.guest.build.ensure_guest_image`,
or from the `guest_images` callable a test or embedder passes in.

Imports: backends.base, backends.kvm, backends.processes,
backends.firecracker.*, config, errors, rpc, and images (lazily, to build
the guest image) and the standard library. Never another backend.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from roost.backends.base import Availability, CreateSpec
from roost.backends.firecracker.binary import find_firecracker, firecracker_version
from roost.backends.kvm import KvmReport, probe_kvm
from roost.errors import CHECK_WORKSPACE, AgentError, BackendError, InvalidArgument, operator_remedy
from roost.models import Protection

if TYPE_CHECKING:
    from roost.backends.firecracker.jail import Jail, JailSettings
    from roost.backends.firecracker.vm import MicroVm
    from roost.rpc import AgentClient

BOOT_TIMEOUT = 20.0
STOP_GRACE = 10.0
FLUSH_TIMEOUT = 5.0
DEFAULT_VCPUS = 2
DEFAULT_MEM_MIB = 1024
GUEST_BUILDER = "roost.images.guest.build"


class GuestBootImage(Protocol):
    """What a boot needs from the guest image pipeline (`roost.images.guest.build.GuestImage`)."""

    @property
    def kernel(self) -> Path: ...
    @property
    def initrd(self) -> Path: ...
    @property
    def rootfs(self) -> Path: ...
    @property
    def boot_args(self) -> str: ...
    @property
    def agent_vsock_port(self) -> int: ...


GuestImageSource = Callable[[CreateSpec, Path], GuestBootImage]
"""Given the create spec and `$ROOST_HOME`, the guest image to boot (built or pulled if need be)."""


def _guest_builder_missing() -> str | None:
    """Why the default guest image source cannot work here, or None (found, not imported: cheap)."""
    try:
        found = importlib.util.find_spec(GUEST_BUILDER) is not None
    except ImportError:
        found = False
    return None if found else "this roost has no guest image builder (roost.images.guest)"


def guest_image_from_pipeline(spec: CreateSpec, home: Path) -> GuestBootImage:
    """The default `GuestImageSource`: roost's guest image pipeline over the home's image cache.

    Raises:
        BackendError: guest_image_unavailable when the pipeline is not there.
        ImageError: whatever building or pulling the image hit.
    """
    missing = _guest_builder_missing()
    if missing is not None:
        raise BackendError(missing, code="guest_image_unavailable", hint="use the sandbox backend on this install")
    from roost.config import images_dir
    from roost.images.cache import ImageCache

    builder = importlib.import_module(GUEST_BUILDER)
    return cast(GuestBootImage, builder.ensure_guest_image(ImageCache(images_dir(home)), spec.env))


def _home_of(ws_dir: Path) -> Path:
    """`$ROOST_HOME` for a workspace directory (`<home>/workspaces/<id>`)."""
    return ws_dir.parent.parent


def _positive(resources: dict[str, Any], key: str, default: int) -> int:
    value = resources.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


class FirecrackerBackend:
    """Workspaces as Firecracker microVMs (needs KVM that boots stock guest kernels).

    Every argument has a working default; they exist for `roost doctor` (`home`: whose
    `runtime install` to look at) and for tests and embedders (`binary`, `guest_images`, `kvm`).
    """

    name = "firecracker"
    isolated = True
    needs_image = True

    def __init__(
        self,
        *,
        home: Path | None = None,
        binary: Path | None = None,
        guest_images: GuestImageSource | None = None,
        kvm: Callable[[], KvmReport] = probe_kvm,
        boot_timeout: float = BOOT_TIMEOUT,
        stop_grace: float = STOP_GRACE,
        jail: JailSettings | Literal["env"] | None = "env",
    ) -> None:
        self._home = home
        self._jail = jail
        self._binary = binary
        self._guest_images = guest_images
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
        """Raises: BackendError: firecracker_missing."""
        binary, where = self.find_binary(home)
        if binary is None:
            raise BackendError(
                where, code="firecracker_missing", remedy=operator_remedy("install it", "runtime_install")
            )
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
                found = f"firecracker v{firecracker_version(binary)} ({where}: {binary}); {self._jail_text(binary)}"
            except BackendError as exc:
                return Availability(self.name, False, exc.message, isolated=True)
        if binary is None or not kvm.can_boot_guests:
            problems = [] if binary is not None else [found]
            if not kvm.can_boot_guests:
                problems.append(f"KVM {kvm.kind}: {kvm.detail}")
            prefix = f"{found}, but " if binary is not None else ""
            return Availability(self.name, False, prefix + "; ".join(problems), isolated=True)
        if self._guest_images is None:
            missing = _guest_builder_missing()
            if missing is not None:
                return Availability(self.name, False, f"{found}, but {missing}", isolated=True)
        return Availability(self.name, True, f"{found}; KVM: {kvm.detail}", isolated=True)

    def _jail_text(self, binary: Path) -> str:
        """Jailer mode in a few words, for `roost doctor`.

        Raises:
            BackendError: ROOST_JAILER asks for what this host cannot do.
        """
        settings = self.jail_settings(binary)
        if settings is None:
            return "jailer: off"
        cgroups = "no cgroups" if settings.cgroup_version is None else f"cgroup v{settings.cgroup_version}"
        return f"jailer: {settings.jailer} (uid {settings.uid}, gid {settings.gid}, {cgroups})"

    # -- lifecycle ----------------------------------------------------------------------
    def _vm(self, ws_dir: Path, runtime: dict[str, Any]) -> MicroVm:
        from roost.backends.firecracker.vm import MicroVm

        pid = runtime.get("vmm_pid")
        ws_id = str(runtime.get("workspace", ws_dir.name))
        jail = self._jail_of(ws_dir, ws_id, runtime)
        return MicroVm(ws_dir, ws_id, pid if isinstance(pid, int) else None, jail)

    @staticmethod
    def _jail_of(ws_dir: Path, ws_id: str, runtime: dict[str, Any]) -> Jail | None:
        """The jail a workspace was created with, from its runtime record (None: not jailed).

        Raises:
            BackendError: runtime_corrupt.
        """
        if runtime.get("jail") is None:
            return None
        from roost.backends.firecracker.jail import Jail, JailSettings

        settings = JailSettings.from_runtime(runtime["jail"])
        assert settings is not None
        return Jail(ws_dir, ws_id, settings, str(runtime["jail"].get("exec_name") or "firecracker"))

    def _runtime(self, vm: MicroVm, plan: dict[str, Any], image_key: str | None) -> dict[str, Any]:
        jail = None if vm.jail is None else {**vm.jail.settings.to_runtime(), "exec_name": vm.jail.exec_name}
        return {
            "jail": jail,
            "vmm_pid": vm.pid,
            "api_socket": str(vm.api_socket),
            "vsock_socket": str(vm.vsock_socket),
            "disk": str(vm.disk),
            "workspace": vm.ws_id,
            "image": image_key,
            **plan,
        }

    def create(self, ws_dir: Path, spec: CreateSpec) -> dict[str, Any]:
        from roost.backends.firecracker.jail import Jail
        from roost.backends.firecracker.vm import (
            INITRD,
            KERNEL,
            BootPlan,
            MicroVm,
            check_kernel,
            copy_disk,
            keep_boot_file,
        )

        if spec.network_policy != "off":
            # Orchestration refuses this first; the seam (api.NetworkInterface, a TAP device in
            # a network namespace) is where egress will plug in.
            raise InvalidArgument(
                f"network policy {spec.network_policy!r} is not available yet: workspaces have no network",
                code="network_policy_unsupported",
                hint="use the default, off (network policies are a later milestone)",
            )
        home = _home_of(ws_dir)
        binary = self.require_binary(home)
        image = (self._guest_images or guest_image_from_pipeline)(spec, home)
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
            copy_disk(Path(image.rootfs), vm.disk)
            vm.launch(binary, plan)
            vm.boot(plan, self.boot_timeout)
        except BaseException:
            self._discard(vm, keep_disk=False)
            raise
        return self._runtime(vm, plan.to_runtime(), spec.image_key)

    @staticmethod
    def _discard(vm: MicroVm, *, keep_disk: bool) -> None:
        """Undo a failed boot without hiding why it failed."""
        from roost.backends.firecracker.vm import DISK, INITRD, KERNEL

        try:
            vm.kill()
        except BackendError:
            pass  # the boot's own error says more; `workspace delete` retries the kill
        if not keep_disk:
            for name in (DISK, KERNEL, INITRD):
                (vm.ws_dir / name).unlink(missing_ok=True)
                (vm.ws_dir / f"{name}.partial").unlink(missing_ok=True)

    def connect(self, ws_dir: Path, runtime: dict[str, Any], *, timeout: float) -> AgentClient:
        vm = self._vm(ws_dir, runtime)
        dead = vm.death_reason()
        if dead is not None:
            raise AgentError(
                f"the workspace VM is not running: {dead}",
                code="agent_unreachable",
                remedy=CHECK_WORKSPACE,
            )
        return vm.connector(int(runtime.get("agent_port", 0))).open_client(timeout, vm.identity)

    def health(self, ws_dir: Path, runtime: dict[str, Any]) -> str | None:
        vm = self._vm(ws_dir, runtime)
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

    def protections(self, runtime: dict[str, Any] | None) -> tuple[Protection, ...]:
        jail: object
        if runtime is None:
            binary, _ = self.find_binary()
            try:
                settings = None if binary is None else self.jail_settings(binary)
            except BackendError as exc:
                return (
                    Protection("virtualisation", True, "a KVM microVM with its own kernel (Firecracker)"),
                    Protection("jailer", False, exc.message),
                )
            jail = None if settings is None else settings.to_runtime()
        else:
            jail = runtime.get("jail")
        if isinstance(jail, dict):
            jailed = Protection(
                "jailer",
                True,
                f"the VMM is chrooted, runs as uid {jail.get('uid')} in its own pid namespace"
                + ("" if jail.get("cgroup_version") is None else f", in cgroup v{jail.get('cgroup_version')} limits"),
            )
        else:
            jailed = Protection("jailer", False, "off: the VMM runs as roost's user (set ROOST_JAILER=1 as root)")
        return (Protection("virtualisation", True, "a KVM microVM with its own kernel (Firecracker)"), jailed)

    def rootfs_id_offset(self, runtime: dict[str, Any] | None) -> tuple[int, int]:
        return 0, 0  # the guest has its own kernel and its own ids

    def destroy(self, ws_dir: Path, ws_id: str, runtime: dict[str, Any]) -> None:
        # No clean guest shutdown first: the disk goes with the directory, so
        # there is nothing to flush, and teardown must not wait out a grace period.
        vm = self._vm(ws_dir, {**runtime, "workspace": ws_id})
        try:
            vm.kill()
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None

    def discard_files(self, ws_dir: Path, runtime: dict[str, Any]) -> None:
        return None  # the guest writes only into its disk image, a file roost owns

    # -- stop and start (for `roost workspace stop|start`) ----------------------------
    def stop(self, ws_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
        """Wind the guest down (sync; services stopped, shells closed), power it off
        (killing it after the grace period), keep the disk.

        Returns the runtime to persist: `vmm_pid` None, `stopped_cleanly` whether the guest shut down on its own.

        Raises:
            BackendError: process_survived.
        """
        vm = self._vm(ws_dir, runtime)
        clean = False
        if vm.running():
            vm.wind_down(int(runtime.get("agent_port", 0)), FLUSH_TIMEOUT)
            clean = vm.shut_down(self.stop_grace)
        else:
            vm.kill()  # strays and stale sockets only
        return {**runtime, "vmm_pid": None, "stopped_cleanly": clean}

    def start(self, ws_dir: Path, spec: CreateSpec, runtime: dict[str, Any]) -> dict[str, Any]:
        """Boot a stopped workspace again from its own disk (stale sockets are removed first).

        Returns the runtime to persist.

        Raises:
            BackendError: firecracker_missing, disk_missing, disk_corrupt, kernel_missing,
                runtime_corrupt, vmm_fault, vmm_died, boot_timeout.
        """
        from roost.backends.firecracker.vm import BootPlan, check_disk, check_kernel

        vm = self._vm(ws_dir, runtime)
        if vm.running():
            return dict(runtime)
        vm.kill()
        plan = BootPlan.from_runtime(runtime)
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
        return {**runtime, **self._runtime(vm, plan.to_runtime(), runtime.get("image")), "stopped_cleanly": None}
