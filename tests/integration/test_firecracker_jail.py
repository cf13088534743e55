"""Jailer mode against the real, pinned jailer and firecracker binaries.

The VMM is launched through the jailer and configured over its API, never
started (a stock kernel cannot boot here): that is enough to prove the jail
(chroot, uid drop, own pid namespace, cgroups), the paths the VMM sees, how a
later process recognises the jailed VMM, and that nothing outlives a kill.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from firecracker_fakes import firecracker_binary, jailer_binary

from helpers import pid_alive
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.firecracker.boot import BootPlan, FirecrackerBoot
from roost.backends.firecracker.jail import CGROUP_PARENT, CGROUP_ROOT, Jail, JailSettings, cgroup_version
from roost.backends.firecracker.vm import MicroVm
from roost.backends.kvm import KvmReport
from roost.errors import BackendError

NOBODY = 65534
PLAN = BootPlan("unused", None, "console=ttyS0", 1024, vcpus=1, mem_mib=256)


@pytest.fixture(scope="module")
def binaries() -> tuple[Path, Path]:
    if os.geteuid() != 0:
        pytest.skip("the jailer needs root")
    firecracker, why = firecracker_binary()
    jailer, why_not_jailer = jailer_binary()
    if firecracker is None or jailer is None:
        pytest.skip(why or why_not_jailer)
    return firecracker, jailer


@pytest.fixture
def workspace_files(tmp_path: Path) -> tuple[Path, Path, str]:
    """A workspace directory with a disk, a kernel file elsewhere, and a fresh workspace id."""
    ws_id = f"ws-{uuid.uuid4().hex[:10]}"
    ws_dir = tmp_path / "workspaces" / ws_id
    ws_dir.mkdir(parents=True, mode=0o700)
    with open(ws_dir / "disk.ext4", "wb") as disk:
        disk.truncate(16 << 20)
    kernel = tmp_path / "images" / "vmlinux"
    kernel.parent.mkdir()
    kernel.write_bytes(b"\x7fELF" + b"\0" * 60)  # opened by the API, never booted
    return ws_dir, kernel, ws_id


@pytest.fixture
def jailed(binaries: tuple[Path, Path], workspace_files: tuple[Path, Path, str]) -> Iterator[MicroVm]:
    _, jailer = binaries
    ws_dir, _, ws_id = workspace_files
    vm = MicroVm(ws_dir, ws_id, jail=Jail(ws_dir, ws_id, JailSettings(str(jailer), NOBODY, NOBODY, cgroup_version())))
    yield vm
    vm.kill()


def _status(pid: int, field: str) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split()[1:]
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _cgroup_dirs(ws_id: str) -> list[Path]:
    return [*CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}/{ws_id}"), *CGROUP_ROOT.glob(f"{CGROUP_PARENT}/{ws_id}")]


def test_a_jailed_vmm_runs_as_nobody_in_its_own_pid_namespace_and_sees_only_its_jail(
    binaries: tuple[Path, Path], workspace_files: tuple[Path, Path, str], jailed: MicroVm
) -> None:
    firecracker, _ = binaries
    ws_dir, kernel, ws_id = workspace_files
    plan = BootPlan(str(kernel), None, "console=ttyS0", 1024, vcpus=1, mem_mib=256)

    jailed.launch(firecracker, plan)
    with jailed.api() as api:
        jailed.configure(api, plan)
        config = api.vm_config()

    assert jailed.pid is not None
    assert _status(jailed.pid, "Uid")[:1] == [str(NOBODY)]
    assert _status(jailed.pid, "NSpid") == [str(jailed.pid), "1"]  # pid 1 of a namespace of its own
    # Every path the VMM was given is inside its jail; the workspace's disk is the very same file.
    assert config["boot-source"]["kernel_image_path"] == "/vmlinux"
    assert [d["path_on_host"] for d in config["drives"]] == ["/disk.ext4"]
    assert config["vsock"]["uds_path"] == "v.sock"
    assert jailed.api_socket.parent == ws_dir / firecracker.name / ws_id / "root"
    assert os.path.samefile(jailed.api_socket.parent / "disk.ext4", ws_dir / "disk.ext4")
    assert (ws_dir / "disk.ext4").stat().st_uid == NOBODY  # the only file it may write


def test_a_jailed_vmm_is_held_in_cgroups_sized_from_the_plan_until_it_is_killed(
    binaries: tuple[Path, Path], workspace_files: tuple[Path, Path, str], jailed: MicroVm
) -> None:
    firecracker, _ = binaries
    _, _, ws_id = workspace_files
    jailed.launch(firecracker, PLAN)
    pid = jailed.pid
    assert pid is not None

    dirs = _cgroup_dirs(ws_id)
    assert dirs, "the jailer made no cgroup for the VMM"
    names = ("memory.limit_in_bytes", "cpu.cfs_quota_us", "memory.max", "cpu.max")
    limits = {name: (d / name).read_text().strip() for d in dirs for name in names if (d / name).exists()}
    if cgroup_version() == 1:
        assert limits["memory.limit_in_bytes"] == str((256 + 256) << 20)
        assert limits["cpu.cfs_quota_us"] == "100000"
        assert str(pid) in (CGROUP_ROOT / "memory" / CGROUP_PARENT / ws_id / "cgroup.procs").read_text().split()
    else:
        assert limits["memory.max"] == str((256 + 256) << 20)
        assert limits["cpu.max"] == "100000 100000"

    jailed.kill()

    assert not pid_alive(pid)
    assert _cgroup_dirs(ws_id) == []
    assert list(jailed.sockets_dir.glob("*.sock")) == []


def test_another_process_recognises_the_jailed_vmm_by_its_record_and_no_other(
    binaries: tuple[Path, Path], workspace_files: tuple[Path, Path, str], jailed: MicroVm
) -> None:
    firecracker, jailer = binaries
    ws_dir, _, ws_id = workspace_files
    jailed.launch(firecracker, PLAN)
    backend = FirecrackerBackend(binary=firecracker, jail=None)
    boot = FirecrackerBoot(ws_id, jailed.pid, PLAN, JailSettings(str(jailer), NOBODY, NOBODY), firecracker.name)

    # Its API answers through the jail's socket: the VM exists but was never started.
    assert backend.health(ws_dir, boot) == "the VM is not running (Firecracker says 'Not started')"
    stranger = replace(boot, workspace="ws-0000000000")
    assert "the VMM died" in (backend.health(ws_dir, stranger) or "")

    # Even with its pid forgotten, delete finds the jailed VMM through the jailer's pid file.
    pid = jailed.pid
    assert pid is not None
    backend.destroy(ws_dir, ws_id, replace(boot, vmm_pid=None))
    assert not pid_alive(pid)


def test_a_relaunch_makes_the_jail_anew(
    binaries: tuple[Path, Path], workspace_files: tuple[Path, Path, str], jailed: MicroVm
) -> None:
    firecracker, _ = binaries
    jailed.launch(firecracker, PLAN)
    first = jailed.pid
    jailed.kill()

    jailed.launch(firecracker, PLAN)  # over the old jail's files: the jailer refuses a busy or present binary

    assert jailed.pid is not None and jailed.pid != first
    with jailed.api() as api:
        assert api.instance_info()["state"] == "Not started"


def test_a_jailer_that_fails_is_vmm_died_with_its_own_words(
    binaries: tuple[Path, Path], workspace_files: tuple[Path, Path, str], jailed: MicroVm, tmp_path: Path
) -> None:
    with pytest.raises(BackendError) as caught:
        jailed.launch(tmp_path / "firecracker", PLAN)  # no such binary to jail

    assert caught.value.code == "vmm_died"
    assert caught.value.message.startswith("the jailer failed: ")
    assert "firecracker" in caught.value.message
    assert caught.value.hint


def test_doctor_names_the_jailer_mode(binaries: tuple[Path, Path]) -> None:
    firecracker, jailer = binaries
    no_kvm = KvmReport("absent", False, "no /dev/kvm")
    settings = JailSettings(str(jailer), 1000, 1000, None)

    jailed = FirecrackerBackend(binary=firecracker, jail=settings, kvm=lambda: no_kvm).availability()
    plain = FirecrackerBackend(binary=firecracker, jail=None, kvm=lambda: no_kvm).availability()

    assert f"jailer: {jailer} (uid 1000, gid 1000, no cgroups)" in jailed.reason
    assert "jailer: off" in plain.reason


@pytest.fixture
def nodev_dir(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted nodev (root only), unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("mounting a nodev tmpfs needs root")
    mount_point = tmp_path / "nodev"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "nodev,size=8m", "roost-test", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_jail_on_a_nodev_mount_is_refused_before_the_jailer_runs(
    binaries: tuple[Path, Path], nodev_dir: Path
) -> None:
    firecracker, jailer = binaries
    ws_dir = nodev_dir / "workspaces" / "ws-nodev"
    ws_dir.mkdir(parents=True)
    vm = MicroVm(ws_dir, "ws-nodev", jail=Jail(ws_dir, "ws-nodev", JailSettings(str(jailer), NOBODY, NOBODY, None)))

    with pytest.raises(BackendError) as caught:
        vm.launch(firecracker, PLAN)

    assert caught.value.code == "jail_nodev"
    assert "nodev" in caught.value.message and "ROOST_HOME" in (caught.value.hint or "")
    assert vm.pid is None and not (ws_dir / firecracker.name).exists()  # nothing was started or made
    no_kvm = KvmReport("absent", False, "no /dev/kvm")
    settings = JailSettings(str(jailer), 1000, 1000, None)
    doctor = FirecrackerBackend(home=nodev_dir, binary=firecracker, jail=settings, kvm=lambda: no_kvm).availability()
    assert not doctor.available and "nodev" in doctor.reason
