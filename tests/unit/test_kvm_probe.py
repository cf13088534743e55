"""How roost reads KVM from the kernel's own reports (a fake /dev, /sys and /proc per test),
and how `roost doctor --json` turns that into a default backend and the reason for it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from roost.backends import get_backend
from roost.backends.firecracker.vm import supports_reflink
from roost.backends.kvm import probe_kvm
from roost.cli.main import main
from roost.workspace import doctor

VMX_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr vmx ssse3 sse4_1 sse4_2"
SVM_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr svm sse4a"
# The order roost picks a default backend in (DESIGN.md).
PREFERENCE = ("firecracker", "sandbox", "mock")
PLAIN_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr hypervisor ssse3"


def fake_host(
    root: Path,
    *,
    device: bool = True,
    modules: tuple[str, ...] = (),
    flags: str = PLAIN_FLAGS,
    cmdline: str = "BOOT_IMAGE=/vmlinuz root=/dev/vda ro quiet",
) -> Path:
    """A sys root holding what probe_kvm reads: dev/kvm, sys/module/<name>/, proc/cpuinfo, proc/cmdline."""
    (root / "dev").mkdir(parents=True)
    if device:
        (root / "dev" / "kvm").touch(mode=0o660)
    for name in modules:
        (root / "sys" / "module" / name).mkdir(parents=True)
    (root / "proc").mkdir()
    cpuinfo = "".join(f"processor\t: {n}\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n\n" for n in range(2))
    (root / "proc" / "cpuinfo").write_text(cpuinfo)
    (root / "proc" / "cmdline").write_text(cmdline + "\n")
    return root


def test_no_dev_kvm_means_no_kvm_whatever_the_cpu_offers(tmp_path: Path) -> None:
    report = probe_kvm(fake_host(tmp_path, device=False, modules=("kvm", "kvm_intel"), flags=VMX_FLAGS))
    assert report.kind == "none"
    assert not report.can_boot_guests
    assert "/dev/kvm" in report.detail


def test_kvm_pvm_alone_is_nested_pvm_that_cannot_boot_stock_guests(tmp_path: Path) -> None:
    report = probe_kvm(fake_host(tmp_path, modules=("kvm", "kvm_pvm")))
    assert report.kind == "pvm"
    assert not report.can_boot_guests
    assert "nested PVM" in report.detail
    assert "nested_pvm=1" not in report.detail  # the kernel was not booted with it


def test_nested_pvm_on_the_kernel_command_line_is_named(tmp_path: Path) -> None:
    host = fake_host(tmp_path, modules=("kvm", "kvm_pvm"), cmdline="root=/dev/vda ro kvm_pvm.nested_pvm=1 quiet")
    report = probe_kvm(host)
    assert report.kind == "pvm"
    assert not report.can_boot_guests
    assert "nested PVM" in report.detail
    assert "nested_pvm=1" in report.detail


def test_kvm_pvm_is_still_pvm_when_the_cpu_reports_vmx(tmp_path: Path) -> None:
    report = probe_kvm(fake_host(tmp_path, modules=("kvm", "kvm_pvm"), flags=VMX_FLAGS))
    assert report.kind == "pvm"
    assert not report.can_boot_guests


@pytest.mark.parametrize(("module", "flags"), [("kvm_intel", VMX_FLAGS), ("kvm_amd", SVM_FLAGS)])
def test_a_hardware_kvm_module_with_vmx_or_svm_boots_guests(tmp_path: Path, module: str, flags: str) -> None:
    report = probe_kvm(fake_host(tmp_path, modules=("kvm", module), flags=flags))
    assert report.kind == "hardware"
    assert report.can_boot_guests
    assert module in report.detail


def test_a_hardware_module_loaded_beside_kvm_pvm_wins(tmp_path: Path) -> None:
    report = probe_kvm(fake_host(tmp_path, modules=("kvm", "kvm_intel", "kvm_pvm"), flags=VMX_FLAGS))
    assert report.kind == "hardware"
    assert report.can_boot_guests


def test_dev_kvm_without_vmx_or_svm_is_no_kvm(tmp_path: Path) -> None:
    report = probe_kvm(fake_host(tmp_path, modules=("kvm",), flags=PLAIN_FLAGS))
    assert report.kind == "none"
    assert not report.can_boot_guests
    assert "vmx/svm" in report.detail


def test_unreadable_proc_files_are_treated_as_reporting_nothing(tmp_path: Path) -> None:
    host = fake_host(tmp_path, modules=("kvm", "kvm_intel"), flags=VMX_FLAGS)
    (host / "proc" / "cpuinfo").unlink()
    (host / "proc" / "cmdline").unlink()
    report = probe_kvm(host)
    assert report.kind == "none"
    assert not report.can_boot_guests


@pytest.mark.skipif(os.geteuid() == 0, reason="root can open any /dev/kvm, so the permission check never triggers")
def test_a_dev_kvm_this_user_cannot_open_is_hardware_that_cannot_boot(tmp_path: Path) -> None:
    host = fake_host(tmp_path, modules=("kvm", "kvm_intel"), flags=VMX_FLAGS)
    (host / "dev" / "kvm").chmod(0)
    report = probe_kvm(host)
    assert report.kind == "hardware"
    assert not report.can_boot_guests
    assert "readable and writable" in report.detail


# -- `roost doctor --json` on this machine --------------------------------------------------------


@pytest.fixture
def doctor_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """`roost doctor --json` for a fresh home, with no backend forced by the environment."""
    with monkeypatch.context() as patched:
        patched.delenv("ROOST_BACKEND", raising=False)
        assert main(["--home", str(tmp_path / "home"), "doctor", "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("host", "ok", "kind"),
    [
        ({"device": False}, False, "none"),
        ({"modules": ("kvm", "kvm_pvm")}, False, "pvm"),
        ({"modules": ("kvm", "kvm_intel"), "flags": VMX_FLAGS}, True, "hardware"),
    ],
    ids=["no-kvm", "nested-pvm", "hardware"],
)
def test_doctor_reports_the_kvm_verdict_of_the_host_it_runs_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    host: dict[str, Any],
    ok: bool,
    kind: str,
) -> None:
    root = fake_host(tmp_path / "host", **host)
    with monkeypatch.context() as patched:
        patched.setattr(doctor, "probe_kvm", lambda: probe_kvm(root))  # this fake host is the one doctor reads
        assert main(["--home", str(tmp_path / "home"), "doctor", "--json"]) == 0
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    assert (checks["kvm"]["ok"], checks["kvm"]["detail"].split(":", 1)[0]) == (ok, kind)


def test_doctor_names_the_default_backend_and_why_the_others_were_passed_over(doctor_report: dict[str, Any]) -> None:
    backends = doctor_report["backends"]
    assert set(PREFERENCE) <= set(backends)
    for name, check in backends.items():
        assert check["name"] == name
        assert isinstance(check["ok"], bool)
        assert check["detail"], f"backend {name} gives no reason"
    default = doctor_report["default_backend"]
    assert default in backends
    assert backends[default]["ok"], "the default backend must be one that is available"
    # Every backend roost prefers over the default says why it was not taken.
    for name in PREFERENCE[: PREFERENCE.index(default)]:
        assert not backends[name]["ok"]
    if default == "mock":
        warnings = [check for check in doctor_report["checks"] if check["name"] == "isolation"]
        assert warnings and "NOT isolated" in warnings[0]["detail"]


def test_doctor_makes_sandbox_the_default_where_bubblewrap_works(doctor_report: dict[str, Any]) -> None:
    sandbox = get_backend("sandbox").availability()
    if not sandbox.available:
        pytest.skip(f"bubblewrap does not work here: {sandbox.reason}")
    assert doctor_report["backends"]["sandbox"]["ok"] is True
    assert doctor_report["default_backend"] == "sandbox"
    checks = {check["name"]: check for check in doctor_report["checks"]}
    assert checks["bubblewrap"]["ok"] is True
    assert "isolation" not in checks


def test_doctor_says_whether_guest_disks_are_cloned_or_copied_where_the_image_cache_lives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert main(["--home", str(home), "doctor", "--json"]) == 0
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    cloned = supports_reflink(tmp_path)
    assert checks["reflink"]["ok"] is cloned
    assert ("shares its image's blocks" if cloned else "copies the guest disk") in checks["reflink"]["detail"]


def test_an_ext4_directory_has_no_reflink(tmp_path: Path) -> None:
    fstype = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", str(tmp_path)], capture_output=True, text=True)
    if fstype.stdout.strip() != "ext4":
        pytest.skip(f"{tmp_path} is on {fstype.stdout.strip() or 'an unknown file system'}, not ext4")
    assert supports_reflink(tmp_path) is False
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
