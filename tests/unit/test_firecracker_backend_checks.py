"""The firecracker backend's checks before anything boots: availability and why not, the guest
files it will hand Firecracker, its per-workspace disk, and what it records to boot again."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from roost.backends import BACKEND_NAMES, PREFERENCE, get_backend, select_backend
from roost.backends.base import CreateSpec
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.firecracker.binary import FIRECRACKER_ENV, runtime_dir
from roost.backends.firecracker.boot import BootPlan, FirecrackerBoot
from roost.backends.firecracker.vm import check_disk, check_kernel, copy_disk, with_required_args
from roost.backends.kvm import KvmReport, probe_kvm
from roost.cli.main import main
from roost.errors import AgentError, BackendError

PLAN = BootPlan("/k/vmlinux", None, "console=ttyS0", 1024)
HARDWARE = KvmReport("hardware", True, "hardware virtualisation (kvm, kvm_intel)")
PVM = KvmReport("pvm", False, "nested PVM (kvm_pvm is loaded): only PVM guest kernels boot")
NO_KVM = KvmReport("none", False, "/dev/kvm is missing (no KVM on this host)")


def fake_firecracker(path: Path, answer: str = 'echo "Firecracker v1.12.1"') -> Path:
    path.write_text(f"#!/bin/sh\n{answer}\n")
    path.chmod(0o755)
    return path


def ext4_stub(path: Path) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(8 << 20)
        fh.seek(1080)
        fh.write(b"\x53\xef")
    return path


class Image:
    def __init__(self, root: Path, kernel: bytes = b"\x7fELF" + b"\0" * 60) -> None:
        self.kernel = root / "vmlinux"
        self.kernel.write_bytes(kernel)
        self.initrd = root / "initrd.img"
        self.initrd.write_bytes(b"")
        self.rootfs = ext4_stub(root / "rootfs.ext4")
        self.boot_args = "console=ttyS0"
        self.agent_vsock_port = 1024


def backend_with(kvm: KvmReport, binary: Path | None, home: Path | None = None) -> FirecrackerBackend:
    return FirecrackerBackend(home=home, binary=binary, kvm=lambda: kvm, jail=None)


# -- availability -----------------------------------------------------------------------------------
def test_firecracker_is_registered_first_in_preference() -> None:
    assert BACKEND_NAMES[0] == PREFERENCE[0] == "firecracker"
    assert isinstance(get_backend("firecracker"), FirecrackerBackend)


def test_without_a_binary_or_usable_kvm_the_reason_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setenv(FIRECRACKER_ENV, str(tmp_path / "nowhere"))
        check = backend_with(PVM, None).availability()
    assert not check.available
    assert check.isolated
    assert f"${FIRECRACKER_ENV}={tmp_path / 'nowhere'} is not an executable file" in check.reason
    assert "nested PVM" in check.reason


def test_a_binary_on_a_pvm_host_is_named_with_its_version_and_why_it_cannot_boot(tmp_path: Path) -> None:
    check = backend_with(PVM, fake_firecracker(tmp_path / "firecracker")).availability()
    assert not check.available
    assert check.reason.startswith(
        f"firecracker v1.12.1 (given: {tmp_path / 'firecracker'}); jailer: off, but KVM pvm: nested PVM"
    )


def test_a_given_binary_that_does_not_exist_is_named(tmp_path: Path) -> None:
    check = backend_with(HARDWARE, tmp_path / "nope").availability()
    assert not check.available
    assert check.reason == f"{tmp_path / 'nope'} is not an executable file"


def test_without_dev_kvm_the_reason_says_so(tmp_path: Path) -> None:
    check = backend_with(NO_KVM, fake_firecracker(tmp_path / "firecracker")).availability()
    assert not check.available
    assert "/dev/kvm is missing" in check.reason


def test_a_binary_that_is_not_firecracker_makes_the_backend_unavailable(tmp_path: Path) -> None:
    check = backend_with(HARDWARE, fake_firecracker(tmp_path / "firecracker", "exit 1")).availability()
    assert not check.available
    assert "is not a working firecracker" in check.reason


def test_a_binary_on_a_host_whose_kvm_boots_guests_is_available(tmp_path: Path) -> None:
    check = backend_with(HARDWARE, fake_firecracker(tmp_path / "firecracker"), tmp_path / "home").availability()
    assert check.available
    assert (
        check.reason
        == f"firecracker v1.12.1 (given: {tmp_path / 'firecracker'}); jailer: off; KVM: {HARDWARE.detail}; "
        "creates: resume a template's memory snapshot (0 made)"
    )


def test_asking_for_firecracker_where_it_cannot_run_is_backend_unavailable_with_the_reason() -> None:
    check = get_backend("firecracker").availability()
    if check.available:
        pytest.skip("firecracker can run on this host")
    with pytest.raises(BackendError) as caught:
        select_backend("firecracker")
    assert caught.value.code == "backend_unavailable"
    assert check.reason in caught.value.message
    if not probe_kvm().can_boot_guests:
        assert probe_kvm().detail in caught.value.message


def test_the_cli_refuses_backend_firecracker_where_it_cannot_run_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = get_backend("firecracker").availability()
    if check.available:
        pytest.skip("firecracker can run on this host")
    home = tmp_path / "home"
    argv = ["--home", str(home), "workspace", "create", "debian:12", "--backend", "firecracker", "--json"]
    assert main(argv) == 5
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]
    assert error["code"] == "backend_unavailable"
    assert check.reason in error["message"]
    assert "roost doctor" in error["hint"]
    assert not (home / "workspaces").exists() or list((home / "workspaces").iterdir()) == []


def test_doctor_names_the_runtime_installed_in_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    runtime_dir(home).mkdir(parents=True)
    installed = fake_firecracker(runtime_dir(home) / "firecracker")
    with monkeypatch.context() as patched:
        patched.delenv(FIRECRACKER_ENV, raising=False)
        patched.delenv("ROOST_BACKEND", raising=False)
        assert main(["--home", str(home), "doctor", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["backends"]["firecracker"]
    assert check["detail"].startswith(f"firecracker v1.12.1 (roost runtime: {installed})")
    if not probe_kvm().can_boot_guests:
        assert check["ok"] is False
        assert probe_kvm().detail in check["detail"]


# -- create refuses early, starting nothing ----------------------------------------------------------
def _ws_dir(tmp_path: Path) -> Path:
    ws_dir = tmp_path / "home" / "workspaces" / "ws-00000000aa"
    ws_dir.mkdir(parents=True)
    return ws_dir


def test_create_without_a_binary_is_firecracker_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setenv(FIRECRACKER_ENV, str(tmp_path / "nowhere"))
        with pytest.raises(BackendError) as caught:
            backend_with(HARDWARE, None).create(
                _ws_dir(tmp_path), CreateSpec("ws-00000000aa", "debian:12", guest_image=Image(tmp_path))
            )
    assert caught.value.code == "firecracker_missing"
    assert "roost.install_runtime()" in caught.value.hint


def test_create_without_the_guest_image_orchestration_prepares_is_image_missing(tmp_path: Path) -> None:
    ws_dir = _ws_dir(tmp_path)
    with pytest.raises(BackendError) as caught:
        backend_with(HARDWARE, fake_firecracker(tmp_path / "firecracker")).create(
            ws_dir, CreateSpec("ws-00000000aa", "debian:12")
        )
    assert caught.value.code == "image_missing"
    assert list(ws_dir.iterdir()) == []


@pytest.mark.parametrize(("kernel", "code"), [(None, "kernel_missing"), (b"\x1f\x8b compressed", "kernel_invalid")])
def test_create_with_a_missing_or_compressed_kernel_fails_before_copying_the_disk(
    tmp_path: Path, kernel: bytes | None, code: str
) -> None:
    image = Image(tmp_path)
    if kernel is None:
        image.kernel.unlink()
    else:
        image.kernel.write_bytes(kernel)
    ws_dir = _ws_dir(tmp_path)
    with pytest.raises(BackendError) as caught:
        backend_with(HARDWARE, fake_firecracker(tmp_path / "firecracker")).create(
            ws_dir, CreateSpec("ws-00000000aa", "debian:12", guest_image=image)
        )
    assert caught.value.code == code
    assert list(ws_dir.iterdir()) == []


def test_a_vm_that_was_never_started_is_unhealthy_and_unreachable(tmp_path: Path) -> None:
    backend = backend_with(HARDWARE, fake_firecracker(tmp_path / "firecracker"))
    boot = FirecrackerBoot("ws-00000000aa", os.getpid(), PLAN)  # alive, but not ours
    reason = backend.health(tmp_path, boot)
    assert reason == "the VMM died without output"
    with pytest.raises(AgentError) as caught:
        backend.connect(tmp_path, boot, timeout=5)
    assert caught.value.code == "agent_unreachable"


def test_stopping_a_vm_that_is_already_gone_only_clears_its_stale_sockets(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "fc.sock"))
    stale.close()
    backend = backend_with(HARDWARE, fake_firecracker(tmp_path / "firecracker"))
    boot = FirecrackerBoot("ws-00000000aa", None, PLAN)
    assert backend.stop(tmp_path, boot) == replace(boot, vmm_pid=None, stopped_cleanly=False)
    assert not (tmp_path / "fc.sock").exists()


# -- the guest files and the disk -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("console=ttyS0", "console=ttyS0 reboot=k panic=1"),
        ("console=ttyS0 panic=5", "console=ttyS0 panic=5 reboot=k"),
        ("reboot=k panic=1 quiet", "reboot=k panic=1 quiet"),
        ("", "reboot=k panic=1"),
    ],
)
def test_the_kernel_command_line_always_ends_the_vmm_on_reboot_and_panic(given: str, sent: str) -> None:
    assert with_required_args(given) == sent


def test_check_kernel_wants_an_uncompressed_elf(tmp_path: Path) -> None:
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF\x02\x01")
    check_kernel(str(tmp_path / "vmlinux"))
    (tmp_path / "bzImage").write_bytes(b"MZ\x00\x00")
    with pytest.raises(BackendError, match="not an uncompressed ELF vmlinux"):
        check_kernel(str(tmp_path / "bzImage"))


def test_the_workspace_disk_is_a_sparse_private_copy_of_the_base(tmp_path: Path) -> None:
    base = ext4_stub(tmp_path / "rootfs.ext4")
    copy_disk(base, tmp_path / "disk.ext4")
    disk = tmp_path / "disk.ext4"
    assert disk.read_bytes() == base.read_bytes()
    assert disk.stat().st_mode & 0o777 == 0o600
    assert disk.stat().st_blocks * 512 < 1 << 20  # 8 MiB apparent, almost nothing allocated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.ext4", "rootfs.ext4"]
    check_disk(disk)


def test_a_base_disk_that_is_not_ext4_is_never_copied(tmp_path: Path) -> None:
    (tmp_path / "rootfs.ext4").write_bytes(b"\0" * 4096)
    with pytest.raises(BackendError) as caught:
        copy_disk(tmp_path / "rootfs.ext4", tmp_path / "disk.ext4")
    assert caught.value.code == "disk_corrupt"
    with pytest.raises(BackendError) as missing:
        copy_disk(tmp_path / "absent.ext4", tmp_path / "disk.ext4")
    assert missing.value.code == "disk_missing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs.ext4"]


def test_a_copy_that_fails_leaves_no_partial_disk(tmp_path: Path) -> None:
    base = ext4_stub(tmp_path / "rootfs.ext4")
    with pytest.raises(BackendError) as caught:
        copy_disk(base, tmp_path / "gone" / "disk.ext4")
    assert caught.value.code == "disk_copy_failed"
    assert "gone/disk.ext4.partial" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs.ext4"]


def test_the_boot_plan_round_trips_through_the_workspace_record() -> None:
    plan = BootPlan("/k/vmlinux", "/k/initrd", "console=ttyS0", 1024, vcpus=4, mem_mib=2048)
    assert BootPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_a_workspace_record_without_the_boot_plan_is_runtime_corrupt() -> None:
    with pytest.raises(BackendError) as caught:
        BootPlan.from_json({"kernel": "/k/vmlinux"})
    assert caught.value.code == "runtime_corrupt"
