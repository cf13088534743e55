"""One Firecracker process for one workspace: its files, launch, configuration, boot and end.

Files in the workspace directory (short names, and the VMM runs with that
directory as its cwd and binds its sockets by relative name, so a deep
`$ROOST_HOME` never hits the 108-byte `sockaddr_un` limit):

    fc.sock          the API socket
    v.sock           the vsock host-side socket (Firecracker adds v.sock_<port> for guest-initiated connects)
    disk.ext4        the workspace's own copy of the guest rootfs
    vmlinux, initrd.img  the guest kernel and initramfs it boots (hard links into the image
                     cache where possible), so pruning an image never strands a stopped workspace
    firecracker.log  the VMM's log and the guest's serial console

In jailer mode (see `jail`) the sockets live in the jail's root instead, and
the VMM sees the kernel, initrd and disk there under short absolute names.

The VMM runs in a network namespace of its own with one TAP device, the
guest's eth0 (see `netns`).

Imports: backends.agent_keys, backends.processes, backends.firecracker.{api,boot,jail,netns,vsock}, errors, rpc,
protocol and the standard library.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from roost.backends.agent_keys import identity_of
from roost.backends.firecracker import netns
from roost.backends.firecracker.api import (
    BootSource,
    Drive,
    EntropyDevice,
    FirecrackerApi,
    MachineConfig,
    NetworkInterface,
    VsockDevice,
)
from roost.backends.firecracker.boot import BootPlan
from roost.backends.firecracker.jail import VMM_LOG_ARGS, Jail
from roost.backends.firecracker.vsock import VsockConnector
from roost.backends.processes import (
    WORKSPACE_MARKER,
    carries_marker,
    is_alive,
    kill_tree,
    log_tail,
    reap,
    spawn_detached,
    wait_for_log,
)
from roost.errors import BackendError, RoostError, operator_remedy
from roost.protocol.addresses import unix_sockaddr
from roost.protocol.identity import AgentIdentity
from roost.protocol.ops.agent import ShutdownArgs
from roost.protocol.ops.execs import ExecArgs
from roost.rpc import AgentClient

API_SOCKET = "fc.sock"
VSOCK_SOCKET = "v.sock"
DISK = "disk.ext4"
KERNEL = "vmlinux"
INITRD = "initrd.img"
LOG = "firecracker.log"
LOG_LIMIT = 1024 * 1024  # the VMM's log and the guest console; root in the guest can write the console at will
GUEST_CID = 3
API_READY_TIMEOUT = 5.0
# Without these the guest reboots into a VMM that never exits, or hangs on a panic.
REQUIRED_BOOT_ARGS = ("reboot=k", "panic=1")
LAUNCH_MARK = "--- roost: starting"
_EXT4_MAGIC_OFFSET = 1080
_EXT4_MAGIC = b"\x53\xef"
REBUILD_GUEST_IMAGE = operator_remedy("rebuild the guest image", "env_build", "ENV")
T = TypeVar("T")


def with_required_args(boot_args: str) -> str:
    """`boot_args` plus what roost relies on: a guest reboot or panic must end the VMM."""
    words = boot_args.split()
    keys = {word.split("=", 1)[0] for word in words}
    return " ".join(words + [arg for arg in REQUIRED_BOOT_ARGS if arg.split("=", 1)[0] not in keys])


def check_kernel(path: str) -> None:
    """Raises: BackendError: kernel_missing, kernel_invalid (Firecracker boots only an uncompressed ELF vmlinux)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise BackendError(
            f"the guest kernel {path} cannot be read: {exc.strerror}",
            code="kernel_missing",
            remedy=REBUILD_GUEST_IMAGE,
        ) from None
    if magic != b"\x7fELF":
        raise BackendError(
            f"the guest kernel {path} is not an uncompressed ELF vmlinux",
            code="kernel_invalid",
            remedy=REBUILD_GUEST_IMAGE,
        )


def check_disk(path: Path) -> None:
    """Raises: BackendError: disk_missing, disk_corrupt (no ext4 superblock)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(_EXT4_MAGIC_OFFSET)
            magic = fh.read(2)
    except OSError as exc:
        raise BackendError(f"the disk {path.name} cannot be read: {exc.strerror}", code="disk_missing") from None
    if magic != _EXT4_MAGIC:
        raise BackendError(
            f"the disk {path} is not an ext4 filesystem (corrupted or truncated)",
            code="disk_corrupt",
            remedy=operator_remedy(
                "a workspace disk cannot be repaired by roost; for a base image, rebuild it", "env_build", "ENV"
            ),
        )


def keep_boot_file(source: Path, dest: Path, *, code: str) -> None:
    """Hard-link (else copy) a kernel or initramfs into the workspace directory; never a partial `dest`.

    Raises:
        BackendError: `code` (kernel_missing, initrd_missing) when `source` cannot be read or copied.
    """
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackendError(
            f"the guest {dest.name} cannot be had from {source}: {exc.strerror}",
            code=code,
            remedy=REBUILD_GUEST_IMAGE,
        ) from None


def copy_disk(base: Path, dest: Path) -> None:
    """Copy-on-write where the filesystem allows (reflink), else a sparse copy; never a partial `dest`.

    Raises:
        BackendError: disk_missing, disk_corrupt, disk_copy_failed.
    """
    check_disk(base)
    partial = dest.with_name(dest.name + ".partial")
    argv = ["cp", "--reflink=auto", "--sparse=always", str(base), str(partial)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        partial.unlink(missing_ok=True)
        raise BackendError(f"cannot copy the guest disk: {exc}", code="disk_copy_failed") from None
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackendError(
            f"cannot copy the guest disk: {result.stderr.strip() or f'cp exited {result.returncode}'}",
            code="disk_copy_failed",
            hint="check free space where $ROOST_HOME lives",
        )
    os.chmod(partial, 0o600)
    os.replace(partial, dest)


_FICLONE = 0x40049409  # ioctl: make dest share all of src's blocks (btrfs, xfs with reflink=1, ...)


def supports_reflink(directory: Path) -> bool:
    """True when files in `directory` can be cloned copy-on-write, so `copy_disk` costs no disk space or time."""
    import fcntl
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory) as source, tempfile.TemporaryFile(dir=directory) as clone:
            source.write(b"roost")
            source.flush()
            fcntl.ioctl(clone.fileno(), _FICLONE, source.fileno())
    except OSError:
        return False
    return True


_KEY_ARG = re.compile(r"roost\.key=[0-9a-fA-F]+")


def without_key(text: str) -> str:
    """`text` (log lines that may quote the guest's command line) without the identity key."""
    return _KEY_ARG.sub("roost.key=(hidden)", text)


class MicroVm:
    """The Firecracker process of workspace `ws_id`, whose files live in `ws_dir`, jailed or not."""

    def __init__(self, ws_dir: Path, ws_id: str, pid: int | None = None, jail: Jail | None = None) -> None:
        self.ws_dir = ws_dir
        self.ws_id = ws_id
        self.pid = pid
        self.jail = jail
        # A pid we spawned ourselves needs no marker or jail check (its environment reads
        # empty for a moment while a wrapper script execs the real binary, and a jailed
        # VMM keeps the jailer's uid until it execs).
        self._spawned_here = False

    @property
    def identity(self) -> AgentIdentity:
        """What the guest's agent must prove (the key is made with the workspace's first boot)."""
        return identity_of(self.ws_dir, self.ws_id, create=True)

    @property
    def sockets_dir(self) -> Path:
        """Where the VMM binds its sockets: its cwd, or its jail's root."""
        return self.jail.root if self.jail is not None else self.ws_dir

    @property
    def api_socket(self) -> Path:
        return self.sockets_dir / API_SOCKET

    @property
    def vsock_socket(self) -> Path:
        return self.sockets_dir / VSOCK_SOCKET

    @property
    def disk(self) -> Path:
        return self.ws_dir / DISK

    @property
    def log(self) -> Path:
        return self.ws_dir / LOG

    # -- liveness -------------------------------------------------------------------
    def running(self) -> bool:
        """True while our VMM process lives (a recycled pid without our marker does not count)."""
        if self.pid is None or not is_alive(self.pid):
            return False
        if self._spawned_here:
            return True
        if self.jail is not None:
            return self.jail.owns(self.pid)  # the jailer clears the environment: no marker to look for
        return carries_marker(self.pid, self.ws_id)

    def death_reason(self) -> str | None:
        """None while the VMM runs, else "the VMM died" and the last thing it (or the guest console) said."""
        if self.running():
            return None
        if self.pid is not None:
            reap(self.pid)
        wait_for_log(self.log)
        last = without_key(log_tail(self.log))
        if last.startswith(LAUNCH_MARK):
            last = ""  # everything before the mark belongs to an earlier boot
        return "the VMM died" + (f"; its last output: {last}" if last else " without output")

    def connector(self, port: int) -> VsockConnector:
        return VsockConnector(self.vsock_socket, port, vmm_probe=self.death_reason)

    def api(self, timeout: float = 5.0) -> FirecrackerApi:
        return FirecrackerApi(self.api_socket, timeout=timeout)

    def network_namespace_pid(self) -> int | None:
        """The VMM's pid while it runs in a network namespace of its own (one booted by a roost
        that gave it none shares the host's, which the gateway must never set up), else None."""
        if self.pid is None or not self.running() or not netns.in_own_namespace(self.pid):
            return None
        return self.pid

    # -- launch and boot ---------------------------------------------------------------
    def clean_sockets(self) -> None:
        """Remove sockets a dead VMM left behind (Firecracker refuses to bind over them)."""
        for path in self.sockets_dir.glob("*.sock*"):
            if path.is_socket():
                path.unlink(missing_ok=True)

    def launch(self, binary: Path, plan: BootPlan) -> None:
        """Start the VMM (through the jailer in jailer mode) with an empty configuration
        and wait until its API answers; `plan` sizes the jail's cgroups.

        Raises:
            BackendError: jail_nodev, backend_start_failed, vmm_died, vmm_unreachable.
        """
        self.clean_sockets()
        binary = binary.absolute()  # it runs with the workspace directory as its cwd
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), WORKSPACE_MARKER: self.ws_id}
        if self.jail is not None:
            self.jail.check_mount()
            self.jail.clear()
            netns.make_named(self.ws_id, self.jail.settings.uid, self.jail.settings.gid)
            argv = self.jail.argv(binary, API_SOCKET, vcpus=plan.vcpus, mem_mib=plan.mem_mib)
        else:
            argv = netns.unshared_argv([str(binary), "--api-sock", API_SOCKET, "--id", self.ws_id, *VMM_LOG_ARGS])
        with os.fdopen(os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600), "a") as log:
            log.write(f"{LAUNCH_MARK} {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(argv)}\n")
        end = time.monotonic() + API_READY_TIMEOUT
        launched = spawn_detached(argv, env=env, log_path=self.log, cwd=self.ws_dir, log_limit=LOG_LIMIT)
        if self.jail is not None:
            late = f"the jailer did not start the VMM within {API_READY_TIMEOUT:g}s"
            self.pid = _poll(lambda: self._jailed_vmm(launched), end, late)
        else:
            self.pid = launched
        # Launched here, so known to be ours even before a jailed VMM has exec'd and dropped its uid.
        self._spawned_here = True
        _poll(self._api_ready, end, f"the VMM did not open its API socket within {API_READY_TIMEOUT:g}s")

    def _jailed_vmm(self, jailer: int) -> int | None:
        """The VMM's pid once the jailer has written it and gone (it forks the VMM into a new
        pid namespace); None while the jailer is at work.

        Raises:
            BackendError: vmm_died (the jailer failed; its last words say why).
        """
        assert self.jail is not None
        if is_alive(jailer):
            return None
        reap(jailer)
        pid = self.jail.vmm_pid()
        if pid is None:
            wait_for_log(self.log)
            raise BackendError(
                f"the jailer failed: {_jailer_complaint(without_key(log_tail(self.log, lines=10)))}",
                code="vmm_died",
                hint="firecracker.log in the workspace directory has more",
            )
        return pid

    def _api_ready(self) -> bool | None:
        """True once the API socket accepts (its file appears at bind(), before listen()); None until then.

        Raises:
            BackendError: vmm_died.
        """
        if _accepting(self.api_socket):
            return True
        dead = self.death_reason()
        if dead is not None:
            raise BackendError(dead, code="vmm_died", hint="firecracker.log in the workspace directory has more")
        return None

    def configure(self, api: FirecrackerApi, plan: BootPlan) -> None:
        """Everything up to InstanceStart: machine, kernel and initrd, root drive, network device, vsock.

        Raises:
            BackendError: vmm_fault (Firecracker refused a part), vmm_unreachable.
        """
        if self.jail is not None:  # the VMM sees only its jail
            kernel = self.jail.stage(Path(plan.kernel), "vmlinux")
            initrd = self.jail.stage(Path(plan.initrd), "initrd") if plan.initrd else None
            disk = self.jail.stage(self.disk, DISK, writable=True)
        else:  # names relative to the VMM's cwd: what it records (a snapshot too) holds no host path
            kernel, disk = self._as_seen_by_vmm(plan.kernel), DISK
            initrd = self._as_seen_by_vmm(plan.initrd) if plan.initrd else None
        api.put_machine_config(MachineConfig(vcpu_count=plan.vcpus, mem_size_mib=plan.mem_mib))
        # The identity goes to init on the kernel command line (the guest's own, read by nothing else).
        proof = f"roost.workspace={self.identity.workspace_id} roost.key={self.identity.key.hex()}"
        boot_args = with_required_args(f"{plan.boot_args} {netns.guest_network_arg()}")
        api.put_boot_source(BootSource(kernel, f"{boot_args} {proof}", initrd))
        api.put_drive(Drive("rootfs", disk, is_root_device=True))
        api.put_entropy(EntropyDevice())  # the guest's CSPRNG seeds from the host's from its first boot
        api.put_network_interface(
            NetworkInterface(netns.GUEST_IFACE, netns.GUEST_LINK, netns.guest_mac(self.identity.workspace_id))
        )
        # Relative, like --api-sock: bound in the VMM's cwd, the workspace directory.
        api.put_vsock(VsockDevice(GUEST_CID, VSOCK_SOCKET))

    def boot(self, plan: BootPlan, boot_timeout: float) -> None:
        """Configure the launched VMM, start the guest, and wait until its agent completes a handshake.

        Raises:
            BackendError: vmm_fault (Firecracker refused the configuration), vmm_died, boot_timeout.
            RoostError: the agent's handshake failed.
        """
        try:
            with self.api() as api:
                self.configure(api, plan)
                api.instance_start()
        except BackendError as exc:
            # An API that stops answering mid-boot usually means the VMM died: say that, with its output.
            dead = self._death_within(1.0) if exc.code == "vmm_unreachable" else None
            if dead is None:
                raise
            raise BackendError(
                dead, code="vmm_died", hint="firecracker.log in the workspace directory has more"
            ) from None
        stream = self.connector(plan.agent_port).wait_for_agent(boot_timeout)
        # The handshake proves the agent speaks our protocol and serves this workspace.
        AgentClient(stream, identity=self.identity).close()

    def _death_within(self, seconds: float) -> str | None:
        """The death reason if the VMM exits within `seconds` (it may still be on its way out)."""
        end = time.monotonic() + seconds
        while (dead := self.death_reason()) is None and time.monotonic() < end:
            time.sleep(0.01)
        return dead

    def _as_seen_by_vmm(self, path: str) -> str:
        """`path` relative to the VMM's cwd when it lies in the workspace directory (a record
        from before workspaces kept their own kernel may name the image cache instead)."""
        return os.path.basename(path) if Path(path).parent == self.ws_dir else path

    # -- the end -------------------------------------------------------------------------
    def wind_down(self, port: int, timeout: float) -> None:
        """Best effort before powering off: flush the page cache, then have the agent
        stop its services and close its shells, so their records say so after a start."""
        try:
            # A guest whose agent does not answer at once will not flush either: do not wait long.
            with self.connector(port).open_client(min(timeout, 1.0), self.identity) as client:
                sync = ExecArgs(argv=("sync",), timeout=timeout)
                client.call(sync.OP, sync.to_wire())
                client.call(ShutdownArgs.OP)
        except RoostError:
            pass

    def flush_disk(self) -> None:
        """fsync the workspace's disk image: what the VMM wrote (a killed one included) reaches the host disk.

        Raises:
            BackendError: disk_flush_failed.
        """
        try:
            fd = os.open(self.disk, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackendError(
                f"cannot open {self.disk.name} to flush it: {exc.strerror}", code="disk_flush_failed"
            ) from None
        try:
            os.fsync(fd)
        except OSError as exc:
            raise BackendError(f"cannot flush {self.disk.name}: {exc.strerror}", code="disk_flush_failed") from None
        finally:
            os.close(fd)

    def shut_down(self, grace: float) -> bool:
        """Ask the guest to power off (Ctrl-Alt-Del; `reboot=k` ends the VMM) and wait up to `grace` seconds.

        Returns whether the VMM ended on its own; it is killed otherwise. Sockets are removed either way.

        Raises:
            BackendError: process_survived.
        """
        clean = False
        if self.running():
            try:
                with self.api(timeout=min(grace, 2.0)) as api:
                    api.send_ctrl_alt_del()
            except BackendError:
                pass  # a VMM that cannot take the request is killed below
            end = time.monotonic() + grace
            while self.running() and time.monotonic() < end:
                time.sleep(0.01)
            clean = not self.running()
        self.kill()
        return clean

    def kill(self) -> None:
        """SIGKILL the VMM and everything carrying the workspace's marker; release its
        cgroups and named network namespace (an unshared one goes with the VMM) and remove the sockets.

        Raises:
            BackendError: process_survived.
        """
        vmm = self.pid if self.running() else None
        if vmm is None and self.jail is not None:
            vmm = self.jail.live_vmm()  # a jailed VMM we lost track of carries no marker to be found by
        kill_tree(self.ws_id, vmm)
        if self.pid is not None:
            reap(self.pid)
        wait_for_log(self.log)  # the keeper carries the marker too: reap it
        if self.jail is not None:
            self.jail.release_cgroups()
            netns.remove_named(self.ws_id)
        self.clean_sockets()


def _poll(step: Callable[[], T | None], end: float, late: str) -> T:
    """Call `step` with growing pauses until it gives a value (it raises to give up).

    Raises:
        BackendError: vmm_unreachable, saying `late`, once `end` has passed.
    """
    delay = 0.001
    while (value := step()) is None:
        if time.monotonic() >= end:
            raise BackendError(
                late, code="vmm_unreachable", hint="firecracker.log in the workspace directory may say why"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return value


def _jailer_complaint(tail: str) -> str:
    """The line of the jailer's last words that says what went wrong (it panics with a backtrace note)."""
    lines = [line.strip() for line in tail.splitlines() if line.strip() and not line.startswith(LAUNCH_MARK)]
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def _accepting(path: Path) -> bool:
    """True once a Unix socket at `path` accepts connections."""
    if not path.exists():
        return False
    address, dir_fd = unix_sockaddr(str(path))
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(address)
        return True
    except OSError:
        return False
    finally:
        probe.close()
        if dir_fd is not None:
            os.close(dir_fd)
