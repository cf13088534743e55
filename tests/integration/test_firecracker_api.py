"""roost's Firecracker API client against the real, pinned Firecracker binary (v1.12.1).

Nothing here boots a guest (a stock kernel spins for ~50 s on nested-PVM hosts): the
VMM is configured, read back, and fed bad configurations; the one InstanceStart uses a
kernel with no ELF header, which Firecracker rejects in milliseconds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from firecracker_fakes import wait_for_path

from roost.backends.firecracker.api import BootSource, Drive, FirecrackerApi, MachineConfig, VsockDevice
from roost.errors import BackendError

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class RunningVmm:
    api: FirecrackerApi
    process: subprocess.Popen[bytes]
    files: Path
    kernel: Path
    disk: Path


def _start(binary: Path, cwd: Path, socket_name: str = "fc.sock") -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(binary), "--api-sock", socket_name, "--id", "roost-test"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_path(cwd / socket_name, proc)
    return proc


@pytest.fixture
def vmm(real_binary: Path, tmp_path: Path) -> Iterator[RunningVmm]:
    kernel, disk = tmp_path / "vmlinux", tmp_path / "disk.ext4"
    kernel.write_bytes(b"")  # exists; never booted
    disk.write_bytes(b"\0" * 65536)
    proc = _start(real_binary, tmp_path)
    api = FirecrackerApi(tmp_path / "fc.sock", timeout=5)
    try:
        yield RunningVmm(api, proc, tmp_path, kernel, disk)
    finally:
        api.close()
        proc.kill()
        proc.wait()


def _fault(call: object) -> BackendError:
    assert callable(call)
    with pytest.raises(BackendError) as caught:
        call()
    assert caught.value.code == "vmm_fault"
    assert caught.value.hint
    return caught.value


def test_a_fresh_vmm_reports_its_version_and_not_started(vmm: RunningVmm) -> None:
    info = vmm.api.instance_info()
    assert info["state"] == "Not started"
    assert info["vmm_version"] == "1.12.1"
    assert info["id"] == "roost-test"


def test_a_configured_vm_reads_back_from_vm_config(vmm: RunningVmm) -> None:
    initrd = vmm.files / "initrd.img"
    initrd.write_bytes(b"")
    vmm.api.put_machine_config(MachineConfig(vcpu_count=2, mem_size_mib=256))
    vmm.api.put_boot_source(BootSource(str(vmm.kernel), "console=ttyS0 reboot=k panic=1", str(initrd)))
    vmm.api.put_drive(Drive("rootfs", str(vmm.disk), is_root_device=True))
    vmm.api.put_vsock(VsockDevice(3, "v.sock"))
    config = vmm.api.vm_config()
    assert config["machine-config"]["vcpu_count"] == 2
    assert config["machine-config"]["mem_size_mib"] == 256
    assert config["boot-source"] == {
        "kernel_image_path": str(vmm.kernel),
        "initrd_path": str(initrd),
        "boot_args": "console=ttyS0 reboot=k panic=1",
    }
    [drive] = config["drives"]
    assert (drive["drive_id"], drive["path_on_host"], drive["is_root_device"], drive["is_read_only"]) == (
        "rootfs",
        str(vmm.disk),
        True,
        False,
    )
    assert config["vsock"] == {"guest_cid": 3, "uds_path": "v.sock"}
    # Relative socket paths are bound in the VMM's working directory.
    assert (vmm.files / "v.sock").is_socket()


def test_zero_vcpus_is_a_vmm_fault_carrying_firecrackers_text(vmm: RunningVmm) -> None:
    error = _fault(lambda: vmm.api.put_machine_config(MachineConfig(vcpu_count=0, mem_size_mib=128)))
    assert error.message.startswith("Machine config error: The number of vCPUs must be greater than 0")
    assert error.details == {"call": "PUT /machine-config", "status": 400}


def test_zero_memory_is_a_vmm_fault(vmm: RunningVmm) -> None:
    error = _fault(lambda: vmm.api.put_machine_config(MachineConfig(vcpu_count=1, mem_size_mib=0)))
    assert "memory size (MiB) is either 0" in error.message


def test_a_missing_kernel_is_a_vmm_fault_naming_the_os_error(vmm: RunningVmm) -> None:
    error = _fault(lambda: vmm.api.put_boot_source(BootSource(str(vmm.files / "no-kernel"))))
    assert (
        error.message == "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)"
    )


def test_a_missing_initrd_is_a_vmm_fault(vmm: RunningVmm) -> None:
    error = _fault(lambda: vmm.api.put_boot_source(BootSource(str(vmm.kernel), None, str(vmm.files / "no-initrd"))))
    assert "initrd file cannot be opened" in error.message


def test_a_drive_whose_file_does_not_exist_is_a_vmm_fault(vmm: RunningVmm) -> None:
    missing = vmm.files / "no-disk.ext4"
    error = _fault(lambda: vmm.api.put_drive(Drive("rootfs", str(missing), is_root_device=True)))
    assert error.message.startswith("Drive config error:")
    assert str(missing) in error.message
    assert vmm.api.vm_config()["drives"] == []


def test_a_vsock_socket_path_already_taken_is_a_vmm_fault(vmm: RunningVmm) -> None:
    (vmm.files / "v.sock").write_bytes(b"")
    error = _fault(lambda: vmm.api.put_vsock(VsockDevice(3, "v.sock")))
    assert "Address in use" in error.message


def test_guest_actions_before_instance_start_are_vmm_faults(vmm: RunningVmm) -> None:
    for action in (
        vmm.api.send_ctrl_alt_del,
        vmm.api.pause,
        vmm.api.resume,
        lambda: vmm.api.create_snapshot(str(vmm.files / "snap"), str(vmm.files / "mem")),
    ):
        assert _fault(action).message == "The requested operation is not supported before starting the microVM."


def test_loading_a_snapshot_into_a_configured_vmm_is_a_vmm_fault(vmm: RunningVmm) -> None:
    vmm.api.put_boot_source(BootSource(str(vmm.kernel)))
    error = _fault(lambda: vmm.api.load_snapshot(str(vmm.files / "snap"), str(vmm.files / "mem")))
    assert error.message.startswith("Load snapshot error:")


def test_instance_start_of_a_kernel_without_an_elf_header_fails_fast_and_leaves_the_vmm_answering(
    vmm: RunningVmm,
) -> None:
    vmm.api.put_machine_config(MachineConfig(vcpu_count=1, mem_size_mib=128))
    vmm.api.put_boot_source(BootSource(str(vmm.kernel), "console=ttyS0"))
    error = _fault(vmm.api.instance_start)
    assert error.message.startswith("Start microvm error:")
    assert "elf header" in error.message.lower()
    assert error.details["call"] == "PUT /actions"
    assert vmm.api.instance_info()["state"] == "Not started"


def test_a_vmm_that_died_is_unreachable_not_a_fault(vmm: RunningVmm) -> None:
    vmm.process.kill()
    vmm.process.wait()
    with pytest.raises(BackendError) as caught:
        vmm.api.instance_info()
    assert caught.value.code == "vmm_unreachable"
    assert "fc.sock" in caught.value.message


def test_a_socket_path_longer_than_sockaddr_un_is_reached_through_its_directory(
    real_binary: Path, tmp_path: Path
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    proc = _start(real_binary, deep)  # binds the relative name in its cwd
    try:
        assert len(str(deep / "fc.sock")) > 108
        with FirecrackerApi(deep / "fc.sock") as api:
            api.put_machine_config(MachineConfig(vcpu_count=1, mem_size_mib=64))
            assert api.vm_config()["machine-config"]["mem_size_mib"] == 64
    finally:
        proc.kill()
        proc.wait()
