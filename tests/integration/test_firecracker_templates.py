"""Creating Firecracker workspaces from a template's memory snapshot, at every seam that runs here.

The fake VMM (firecracker_fakes.py, its snapshot semantics noted there) stands in for KVM: the
first create boots the image once as a template, pauses and snapshots it; each create then
resumes a clone whose agent renews the machine (entropy, clock, hostname, machine-id) and
proves its own workspace before anything runs. A template that cannot be made, or a clone that
does not load, leaves a note and the create boots cold.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
from firecracker_fakes import machine_calls
from test_firecracker_backend import NOTHING, PORT, Setup, boot_count, fake_vmm, run, setup  # noqa: F401

from roost.backends.firecracker.api import FirecrackerApi
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.firecracker.boot import FirecrackerBoot
from roost.backends.firecracker.template import TEMPLATES_DIR, TemplateStore
from roost.backends.firecracker.vm import DISK
from roost.backends.kvm import KvmReport

pytestmark = pytest.mark.integration


def _second(setup: Setup) -> Setup:  # noqa: F811
    """Another workspace of the same home and image."""
    ws_id = "ws-" + secrets.token_hex(5)
    ws_dir = setup.home / "workspaces" / ws_id
    ws_dir.mkdir(parents=True)
    return Setup(ws_id, setup.home, ws_dir, setup.image, setup.state)


def _template_dirs(setup: Setup) -> list[Path]:  # noqa: F811
    return [path for path in (setup.home / TEMPLATES_DIR).iterdir() if path.is_dir()]


def test_creates_resume_clones_of_one_template_each_a_machine_and_a_workspace_of_its_own(
    setup: Setup,  # noqa: F811
    fake_vmm: Path,  # noqa: F811
) -> None:
    backend = setup.backend(fake_vmm, templates=True)
    other = _second(setup)
    started = time.time_ns()

    first = backend.create(setup.ws_dir, setup.spec())
    second = backend.create(other.ws_dir, other.spec())

    [template] = _template_dirs(setup)  # built once, for both
    assert first.created_by == second.created_by == f"template {template.name}"
    assert sorted(p.name for p in template.iterdir()) == [
        "agent.key",
        DISK,
        "firecracker.log",
        "memory",
        "template.json",
        "vmstate",
    ]
    assert boot_count(template / DISK) == 1  # the template booted; no clone ever did
    for ws in (setup, other):
        assert boot_count(ws.ws_dir / DISK) == 1
        assert "fake guest: restored from a snapshot" in (ws.ws_dir / "firecracker.log").read_text()

    # Each clone renewed its machine before serving: fresh entropy, the clock, its own hostname and machine-id.
    renewed = [{c["call"]: c["value"] for c in machine_calls(ws.ws_dir / "fake-guest")} for ws in (setup, other)]
    for calls, ws in zip(renewed, (setup, other), strict=True):
        assert list(calls) == ["add_entropy", "set_clock", "set_hostname", "set_machine_id"]
        assert len(bytes.fromhex(calls["add_entropy"])) == 64
        assert started <= calls["set_clock"] <= time.time_ns()
        assert calls["set_hostname"] == ws.ws_id
    assert renewed[0]["add_entropy"] != renewed[1]["add_entropy"]
    assert renewed[0]["set_machine_id"] != renewed[1]["set_machine_id"]

    # Each answers as its own workspace (the connection proves the workspace's key), and they share no files.
    assert run(backend, setup.ws_dir, first, "sh", "-c", "echo mine > note") == (0, b"")
    assert run(backend, other.ws_dir, second, "sh", "-c", "cat note 2>/dev/null || echo absent") == (0, b"absent\n")
    for ws, boot in ((setup, first), (other, second)):
        backend.destroy(ws.ws_dir, ws.ws_id, boot)


def test_a_clone_stops_and_starts_cold_from_its_own_disk(setup: Setup, fake_vmm: Path) -> None:  # noqa: F811
    backend = setup.backend(fake_vmm, templates=True)
    boot = backend.create(setup.ws_dir, setup.spec())
    stopped = backend.stop(setup.ws_dir, boot)

    started = backend.start(setup.ws_dir, setup.spec(), stopped)

    assert started.created_by == boot.created_by  # the record keeps how it was made
    assert boot_count(setup.ws_dir / DISK) == 2  # the template's boot, then this cold start of the copy
    with FirecrackerApi(setup.ws_dir / "fc.sock") as api:
        args = api.vm_config()["boot-source"]["boot_args"].split()
    assert f"roost.workspace={setup.ws_id}" in args  # a cold boot hands the workspace's own identity
    assert run(backend, setup.ws_dir, started, "true") == (0, b"")
    backend.destroy(setup.ws_dir, setup.ws_id, started)


def test_a_template_that_cannot_be_snapshotted_is_noted_and_creates_boot_cold(
    setup: Setup,  # noqa: F811
    fake_vmm: Path,  # noqa: F811
) -> None:
    image = setup.image.__class__(
        setup.image.kernel,
        setup.image.initrd,
        setup.image.rootfs,
        f"{setup.image.boot_args} fake.snapshot=refuse",
        PORT,
    )
    refusing = Setup(setup.ws_id, setup.home, setup.ws_dir, image, setup.state)
    backend = setup.backend(fake_vmm, templates=True)

    boot = backend.create(refusing.ws_dir, refusing.spec())

    assert boot.created_by == "cold boot"
    store = TemplateStore(setup.home)
    [note] = (setup.home / TEMPLATES_DIR).glob("*.failed")
    assert "vmm_fault" in note.read_text() and "refused" in note.read_text()
    assert store.names() == []  # no half-made template, no staging left
    assert not list((setup.home / TEMPLATES_DIR).glob(".build-*"))
    assert run(backend, setup.ws_dir, boot, "true") == (0, b"")
    backend.destroy(setup.ws_dir, setup.ws_id, boot)

    other = _second(refusing)
    again = backend.create(other.ws_dir, other.spec())  # the note stands: no second attempt
    assert again.created_by == "cold boot"
    assert not list((setup.home / TEMPLATES_DIR).glob(".build-*"))
    backend.destroy(other.ws_dir, other.ws_id, again)


def test_a_clone_that_does_not_load_boots_cold_and_retires_the_template(
    setup: Setup,  # noqa: F811
    fake_vmm: Path,  # noqa: F811
) -> None:
    backend = setup.backend(fake_vmm, templates=True)
    first = backend.create(setup.ws_dir, setup.spec())
    backend.destroy(setup.ws_dir, setup.ws_id, first)
    [template] = _template_dirs(setup)
    (template / "vmstate").chmod(0o644)
    (template / "vmstate").write_text("not a VM state")  # e.g. a host whose CPU cannot take it

    other = _second(setup)
    boot = backend.create(other.ws_dir, other.spec())

    assert boot.created_by == "cold boot"
    assert not template.exists()
    note = (setup.home / TEMPLATES_DIR / f"{template.name}.failed").read_text()
    assert note.startswith("a clone failed: vmm_fault")
    assert run(backend, other.ws_dir, boot, "true") == (0, b"")
    backend.destroy(other.ws_dir, other.ws_id, boot)
    assert other.leftovers() == {**NOTHING, "disk": True}


def test_templates_off_boots_cold_and_makes_no_template(setup: Setup, fake_vmm: Path) -> None:  # noqa: F811
    boot = setup.backend(fake_vmm, templates=False).create(setup.ws_dir, setup.spec())
    assert boot.created_by == "cold boot"
    assert not (setup.home / TEMPLATES_DIR).exists()
    record = FirecrackerBoot.from_json(json.loads(json.dumps(boot.to_json())))
    assert record.created_by == "cold boot"
    setup.backend(fake_vmm).destroy(setup.ws_dir, setup.ws_id, boot)


def test_doctor_says_how_creates_start_a_vm(setup: Setup, fake_vmm: Path) -> None:  # noqa: F811
    kvm = lambda: KvmReport("hardware", True, "a test double")  # noqa: E731
    on = FirecrackerBackend(home=setup.home, binary=fake_vmm, kvm=kvm, jail=None, templates=True)
    assert "creates: resume a template's memory snapshot (0 made)" in on.availability().reason
    (setup.home / TEMPLATES_DIR).mkdir(parents=True)
    (setup.home / TEMPLATES_DIR / "0123.failed").write_text("vmm_fault: refused\n")
    assert "1 failed and boot cold" in on.availability().reason
    off = FirecrackerBackend(home=setup.home, binary=fake_vmm, kvm=kvm, jail=None, templates=False)
    assert "creates: cold boots (ROOST_FC_TEMPLATES=0)" in off.availability().reason
