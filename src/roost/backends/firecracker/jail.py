"""Jailer mode: each Firecracker process started through Firecracker's `jailer`.

Opt-in with `ROOST_JAILER` (`1` finds `jailer` beside the firecracker binary or
on PATH; a path names one). The jailer needs root; it then chroots the VMM
into the workspace's jail, drops it to `ROOST_JAILER_UID`/`ROOST_JAILER_GID`
(default 65534, nobody), gives it its own pid and mount namespaces, caps its
open files, and puts it in cgroups sized from the workspace's resources
(CPU quota = vcpus, memory = guest memory + VMM headroom) under a `roost`
parent cgroup. `ROOST_JAILER_CGROUPS=0` leaves cgroups out (hosts whose
cgroup controllers cannot be delegated).

The jail lives inside the workspace directory, so deleting the workspace
deletes it:

    <ws_dir>/<exec name>/<ws_id>/root/      the VMM's `/`, made anew on every launch
        fc.sock, v.sock                       its API and vsock sockets
        vmlinux, initrd                       the guest kernel and initramfs (hard links, else copies)
        disk.ext4                             a hard link to the workspace's own <ws_dir>/disk.ext4
        <exec name>.pid                       the VMM's pid, written by the jailer

The jailer clears the environment, so a jailed VMM carries no workspace
marker; it is recognised by its command line (`--id <ws_id>`) and its uid.

The VMM joins its own named network namespace (`--netns`, see `netns`),
which `MicroVm` makes before the jailer runs and removes with the VMM.

Imports: backends.firecracker.netns, backends.processes, errors and the standard library.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.backends.firecracker.netns import named_path
from roost.backends.processes import is_alive, read_proc_file
from roost.errors import BackendError, operator_remedy

JAILER_ENV = "ROOST_JAILER"
UID_ENV = "ROOST_JAILER_UID"
GID_ENV = "ROOST_JAILER_GID"
CGROUPS_ENV = "ROOST_JAILER_CGROUPS"
NOBODY = 65534
CGROUP_PARENT = "roost"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_RELEASE_S = 2.0  # how long a killed VMM's exit may keep its cgroup busy
CPU_PERIOD_US = 100_000
VMM_HEADROOM_MIB = 256  # the VMM's own memory on top of the guest's, before the cgroup steps in
MAX_OPEN_FILES = 2048
# Firecracker logs API request bodies at Info; the boot source's carries the workspace's identity key.
VMM_LOG_ARGS = ("--level", "Warning")
_OFF = ("", "0", "off", "no", "false")
_ON = ("1", "on", "yes", "true")


def mount_refuses_devices(path: Path) -> bool:
    """True when the file system holding `path` (or its nearest existing parent) is mounted `nodev`."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return bool(os.statvfs(path).f_flag & os.ST_NODEV)


@dataclass(frozen=True)
class JailSettings:
    """How workspaces of this host are jailed; persisted in each workspace's record."""

    jailer: str
    uid: int = NOBODY
    gid: int = NOBODY
    cgroup_version: int | None = 1  # None: no cgroups

    def to_json(self) -> dict[str, Any]:
        return {"jailer": self.jailer, "uid": self.uid, "gid": self.gid, "cgroup_version": self.cgroup_version}

    @classmethod
    def from_json(cls, value: object) -> JailSettings | None:
        """The settings a workspace was created with (None: not jailed).

        Raises:
            BackendError: runtime_corrupt.
        """
        if value is None:
            return None
        unreadable = BackendError(
            "the workspace's jail record is unreadable", code="runtime_corrupt", hint="recreate the workspace"
        )
        if not isinstance(value, dict):
            raise unreadable
        try:
            version = value.get("cgroup_version")
            return cls(
                str(value["jailer"]), int(value["uid"]), int(value["gid"]), None if version is None else int(version)
            )
        except (KeyError, TypeError, ValueError):
            raise unreadable from None


def settings_from_env(environ: Mapping[str, str], firecracker: Path) -> JailSettings | None:
    """Jailer mode as `environ` asks for it, checked against this host; None when off.

    Raises:
        BackendError: jailer_missing, jailer_needs_root, jailer_config_invalid.
    """
    value = environ.get(JAILER_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value.lower() in _ON:
        beside = firecracker.with_name("jailer")
        found = str(beside) if os.access(beside, os.X_OK) else shutil.which("jailer")
        if found is None:
            raise BackendError(
                f"{JAILER_ENV}={value} but no jailer is beside {firecracker} or on PATH",
                code="jailer_missing",
                remedy=operator_remedy(f"set {JAILER_ENV} to the jailer's path, or install it", "runtime_install"),
            )
        jailer = found
    else:
        jailer = value
        if not os.access(jailer, os.X_OK):
            raise BackendError(
                f"{JAILER_ENV}={value} is not an executable file",
                code="jailer_missing",
                hint=f"set {JAILER_ENV} to the jailer's path, or unset it",
            )
    if os.geteuid() != 0:
        raise BackendError(
            "the jailer must be started as root (it chroots, makes device nodes and drops to its uid)",
            code="jailer_needs_root",
            hint=f"run roost as root, or unset {JAILER_ENV}",
        )
    cgroups = environ.get(CGROUPS_ENV, "1").strip().lower() not in _OFF
    return JailSettings(
        os.path.abspath(jailer),
        _id_from(environ, UID_ENV),
        _id_from(environ, GID_ENV),
        cgroup_version() if cgroups else None,
    )


def _id_from(environ: Mapping[str, str], name: str) -> int:
    raw = environ.get(name, "").strip() or str(NOBODY)
    if not raw.isdigit() or int(raw) == 0:
        raise BackendError(
            f"{name}={raw} is not a non-root numeric id", code="jailer_config_invalid", hint=f"e.g. {name}={NOBODY}"
        )
    return int(raw)


def cgroup_version() -> int:
    """2 on a host with the unified hierarchy at /sys/fs/cgroup, else 1."""
    return 2 if (CGROUP_ROOT / "cgroup.controllers").exists() else 1


class Jail:
    """The jail of one workspace's VMM: where it lives, how it is started, how it is told apart."""

    def __init__(self, ws_dir: Path, ws_id: str, settings: JailSettings, exec_name: str = "firecracker") -> None:
        self.ws_dir = ws_dir
        self.ws_id = ws_id
        self.settings = settings
        self.exec_name = exec_name

    @property
    def base(self) -> Path:
        """The jailer's own directory for this VMM (`--chroot-base-dir` is the workspace directory)."""
        return self.ws_dir / self.exec_name / self.ws_id

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def pid_file(self) -> Path:
        return self.root / f"{self.exec_name}.pid"

    def argv(self, firecracker: Path, api_socket: str, *, vcpus: int, mem_mib: int) -> list[str]:
        s = self.settings
        argv = [s.jailer, "--id", self.ws_id, "--exec-file", str(firecracker), "--uid", str(s.uid), "--gid", str(s.gid)]
        argv += ["--chroot-base-dir", str(self.ws_dir), "--new-pid-ns", "--resource-limit", f"no-file={MAX_OPEN_FILES}"]
        argv += ["--netns", named_path(self.ws_id)]
        if s.cgroup_version is not None:
            argv += ["--cgroup-version", str(s.cgroup_version), "--parent-cgroup", CGROUP_PARENT]
            for limit in self.cgroup_limits(vcpus, mem_mib):
                argv += ["--cgroup", limit]
        return [*argv, "--", "--api-sock", f"/{api_socket}", *VMM_LOG_ARGS]

    def cgroup_limits(self, vcpus: int, mem_mib: int) -> list[str]:
        memory = (mem_mib + VMM_HEADROOM_MIB) * 1024 * 1024
        if self.settings.cgroup_version == 2:
            return [f"cpu.max={vcpus * CPU_PERIOD_US} {CPU_PERIOD_US}", f"memory.max={memory}"]
        return [f"cpu.cfs_quota_us={vcpus * CPU_PERIOD_US}", f"memory.limit_in_bytes={memory}"]

    def check_mount(self) -> None:
        """Refuse a workspace directory on a `nodev` mount: the jailer makes `/dev/kvm` and
        `/dev/net/tun` inside the chroot with mknod, and the VMM could not open them there.

        Raises:
            BackendError: jail_nodev.
        """
        if mount_refuses_devices(self.ws_dir):
            raise BackendError(
                f"the jail would live on a nodev mount ({self.ws_dir}): the VMM could not open the "
                "/dev/kvm the jailer makes inside it",
                code="jail_nodev",
                hint="put $ROOST_HOME on a file system mounted without nodev, or turn jailer mode off (ROOST_JAILER=0)",
            )

    def clear(self) -> None:
        """Remove what an earlier launch left (the jailer refuses to copy over a busy binary)."""
        shutil.rmtree(self.base, ignore_errors=True)

    def stage(self, source: Path, name: str, *, writable: bool = False) -> str:
        """Put `source` into the jail as `/name`; return the path the VMM sees.

        The disk (`writable`) must be a hard link, handed to the jail's uid: the
        VMM writes the workspace's own disk. A read-only file is a hard link
        when everyone may read it already, else a world-readable copy, so the
        shared file's owner and mode never change.

        Raises:
            BackendError: jail_setup_failed.
        """
        inside = self.root / name
        try:
            inside.unlink(missing_ok=True)
            if writable:
                os.link(source, inside)
                os.chown(inside, self.settings.uid, self.settings.gid)
            else:
                try:
                    if not os.stat(source).st_mode & 0o004:
                        raise PermissionError("not world-readable")
                    os.link(source, inside)
                except OSError:
                    shutil.copyfile(source, inside)
                    os.chmod(inside, 0o444)
        except OSError as exc:
            raise BackendError(
                f"cannot put {source.name} into the jail: {exc.strerror}",
                code="jail_setup_failed",
                hint="the workspace disk must be on the same file system as the workspace directory",
            ) from None
        return f"/{name}"

    def vmm_pid(self) -> int | None:
        """The VMM's pid as the jailer wrote it (host pid namespace), once it has."""
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def live_vmm(self) -> int | None:
        """The jailed VMM's pid while it runs, from the jailer's pid file."""
        pid = self.vmm_pid()
        return pid if pid is not None and is_alive(pid) and self.owns(pid) else None

    def owns(self, pid: int) -> bool:
        """True when `pid` is this workspace's jailed VMM (pids get reused)."""
        argv = read_proc_file(f"/proc/{pid}/cmdline").split(b"\0")
        if argv[1:3] != [b"--id", self.ws_id.encode()]:
            return False
        status = read_proc_file(f"/proc/{pid}/status").decode(errors="replace")
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        return uid_line.split()[1:2] == [str(self.settings.uid)]

    def release_cgroups(self) -> None:
        """Remove the VMM's cgroups once it is gone (their parent `roost` stays for the next)."""
        if self.settings.cgroup_version is None:
            return
        end = time.monotonic() + CGROUP_RELEASE_S
        for path in (*CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}/{self.ws_id}"), CGROUP_ROOT / CGROUP_PARENT / self.ws_id):
            _remove_cgroup(path, end)


def _remove_cgroup(path: Path, end: float) -> None:
    """Remove an emptied cgroup; a killed task can hold it busy for a moment while the kernel finishes its exit."""
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return  # never made, or already gone
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= end:
                return  # still busy after CGROUP_RELEASE_S, or not ours to remove: leave it
        time.sleep(0.01)
