"""The real Firecracker binary in its own network namespace with the guest's TAP, as far as it runs without
a KVM that boots guests: launched and configured up to InstanceStart, the gateway attached to its
namespace, then killed. Traffic through a booted guest is in test_firecracker_kvm.py (KVM hosts)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from firecracker_fakes import jailer_binary

from roost.backends.firecracker import netns
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.firecracker.boot import BootPlan, FirecrackerBoot
from roost.backends.firecracker.jail import Jail, JailSettings
from roost.backends.firecracker.vm import MicroVm
from roost.backends.kvm import KvmReport
from roost.backends.processes import is_alive
from roost.network.attachment import attach, detach, network_available
from roost.network.policy import parse_policy

pytestmark = pytest.mark.integration


def _disk(path: Path) -> None:
    with open(path, "wb") as fh:
        fh.truncate(1 << 20)
        fh.seek(1080)
        fh.write(b"\x53\xef")


@pytest.fixture
def vm_dir(tmp_path: Path) -> Iterator[tuple[Path, str, BootPlan]]:
    ws_id = "ws-" + secrets.token_hex(5)
    ws_dir = tmp_path / "workspaces" / ws_id
    ws_dir.mkdir(parents=True)
    kernel = ws_dir / "vmlinux"
    kernel.write_bytes(b"\x7fELF" + b"\0" * 4092)
    _disk(ws_dir / "disk.ext4")
    yield ws_dir, ws_id, BootPlan(str(kernel), None, "console=ttyS0", 1024, vcpus=1, mem_mib=128)
    netns.remove_named(ws_id)


def _inside(pid: int, *argv: str, user: bool = True) -> str:
    enter = ["nsenter", "-t", str(pid), *(["-U", "--preserve-credentials"] if user else []), "-n"]
    return subprocess.run([*enter, *argv], capture_output=True, text=True, check=True).stdout


def _holders(inode: int) -> list[str]:
    """Processes still in the network namespace `inode`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.stat(entry / "ns" / "net").st_ino == inode:
                found.append(entry.name)
        except OSError:
            continue
    return found


def _configured(vm: MicroVm, plan: BootPlan) -> dict[str, object]:
    with vm.api() as api:
        vm.configure(api, plan)
        config: dict[str, object] = api.vm_config()
    return config


def _check_gateway_attaches(tmp_path: Path, pid: int, *, user: bool) -> None:
    available, reason = network_available()
    if not available:
        pytest.skip(reason)
    boot = attach(tmp_path / "network", pid, parse_policy("egress"), [])
    try:
        rules = _inside(pid, "nft", "list", "table", "ip", "roost", user=user)
        assert 'iifname "tap0" ip daddr 100.96.0.1' in rules and "tproxy to 127.0.0.1:" in rules
        assert "100.96.0.2 dev tap0" in _inside(pid, "ip", "route", "show", "table", "local", user=user)
    finally:
        detach(tmp_path / "network", boot)


def test_the_vmm_runs_in_its_own_namespace_takes_its_tap_as_eth0_and_the_gateway_attaches_there(
    real_binary: Path, vm_dir: tuple[Path, str, BootPlan], tmp_path: Path
) -> None:
    ws_dir, ws_id, plan = vm_dir
    vm = MicroVm(ws_dir, ws_id)
    vm.launch(real_binary, plan)
    assert vm.pid is not None
    try:
        assert netns.in_own_namespace(vm.pid)
        inode = os.stat(f"/proc/{vm.pid}/ns/net").st_ino
        assert "tap0" in _inside(vm.pid, "ip", "-o", "link", "show", "tap0")
        config = _configured(vm, plan)
        (interface,) = config["network-interfaces"]  # type: ignore[misc]
        assert (interface["iface_id"], interface["host_dev_name"], interface["guest_mac"]) == (
            "eth0",
            "tap0",
            netns.guest_mac(ws_id),
        )
        boot_args = config["boot-source"]["boot_args"].split()  # type: ignore[index]
        assert "roost.net=100.96.0.2/30,100.96.0.1,100.96.0.1" in boot_args
        backend = FirecrackerBackend(binary=real_binary, kvm=lambda: KvmReport("hardware", True, "a test double"))
        assert backend.network_namespace_pid(FirecrackerBoot(ws_id, vm.pid, plan)) == vm.pid
        _check_gateway_attaches(tmp_path, vm.pid, user=True)
    finally:
        vm.kill()
    assert not is_alive(vm.pid)
    assert _holders(inode) == []  # the namespace, and the TAP in it, went with the VMM
    assert subprocess.run(["ip", "link", "show", "tap0"], capture_output=True).returncode != 0


def test_a_vmm_in_the_hosts_namespace_is_never_handed_to_the_gateway(real_binary: Path) -> None:
    plan = BootPlan("/nonexistent", None, "", 1024)
    backend = FirecrackerBackend(binary=real_binary, kvm=lambda: KvmReport("hardware", True, "a test double"))
    assert backend.network_namespace_pid(FirecrackerBoot("ws-0000000000", os.getpid(), plan)) is None
    assert backend.network_namespace_pid(None) is None


def test_a_jailed_vmm_gets_a_named_namespace_with_a_tap_its_uid_owns_and_kill_removes_it(
    real_binary: Path, vm_dir: tuple[Path, str, BootPlan], tmp_path: Path
) -> None:
    jailer, why = jailer_binary()
    if jailer is None or os.geteuid() != 0:
        pytest.skip(why or "the jailer needs root")
    ws_dir, ws_id, plan = vm_dir
    vm = MicroVm(ws_dir, ws_id, jail=Jail(ws_dir, ws_id, JailSettings(str(jailer), 65534, 65534, None)))
    vm.launch(real_binary, plan)
    assert vm.pid is not None
    try:
        assert f"roost-{ws_id}" in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        taps = subprocess.run(["ip", "-n", f"roost-{ws_id}", "tuntap", "show"], capture_output=True, text=True).stdout
        assert "tap0: tap persist user 65534 group 65534" in taps
        (interface,) = _configured(vm, plan)["network-interfaces"]  # type: ignore[misc]
        assert interface["host_dev_name"] == "tap0"
        _check_gateway_attaches(tmp_path, vm.pid, user=False)
    finally:
        vm.kill()
    assert not is_alive(vm.pid)
    assert f"roost-{ws_id}" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
