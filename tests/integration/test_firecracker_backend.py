"""`FirecrackerBackend` end to end without KVM: create, exec, stop, start, crash and delete.

The VMM is the fake from `firecracker_fakes` (Firecracker's API and fault texts, checked
against the real binary there; its "guest" is a real roost agent behind a host-side vsock relay),
so every line of the backend runs: disk copy, launch, API configuration, InstanceStart, the vsock
handshake under a boot deadline, health, and teardown. Two tests use the real Firecracker binary
for the failures it can show here (a kernel it refuses, an initrd it cannot open).
"""

from __future__ import annotations

import os
import secrets
import signal
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from firecracker_fakes import BOOT_COUNTER_OFFSET, jailer_binary, write_fake_vmm

from helpers import pids_with_env, wait_until
from roost.backends import Backend
from roost.backends.base import CreateSpec
from roost.backends.firecracker.api import FirecrackerApi
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.firecracker.boot import FirecrackerBoot
from roost.backends.firecracker.jail import CGROUP_PARENT, CGROUP_ROOT, JailSettings, cgroup_version
from roost.backends.kvm import KvmReport
from roost.backends.processes import WORKSPACE_MARKER
from roost.errors import AgentError, BackendError, RoostError
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache
from roost.protocol import Op
from roost.protocol.ops.execs import ExecArgs
from roost.store.records import WorkspaceRecord, utc_now
from roost.workspace import boot_images, lifecycle, operations
from roost.workspace.engine import Engine

pytestmark = pytest.mark.integration

PORT = 1024


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    rootfs: Path
    boot_args: str
    agent_vsock_port: int


@dataclass
class Setup:
    """One workspace directory (its id unique per test: xdist workers share /proc) and a guest image."""

    ws_id: str
    home: Path
    ws_dir: Path
    image: GuestImage
    state: Path

    def spec(self, **changes: Any) -> CreateSpec:
        """What orchestration hands the backend: the guest image it prepared among it."""
        made = CreateSpec(self.ws_id, "debian:12", {"vcpus": 1, "mem_mib": 256}, guest_image=self.image)
        return replace(made, **changes)

    def leftovers(self) -> dict[str, Any]:
        """What a failed or deleted workspace must not leave: processes, sockets, a disk."""
        return {
            "processes": pids_with_env(WORKSPACE_MARKER, self.ws_id),
            "sockets": sorted(p.name for p in self.ws_dir.iterdir() if p.is_socket()),
            "disk": (self.ws_dir / "disk.ext4").exists(),
        }

    def backend(
        self, binary: Path, boot_timeout: float = 20.0, jail: JailSettings | None = None, *, templates: bool = False
    ) -> FirecrackerBackend:
        """The backend under test; cold boots unless `templates` (test_firecracker_templates.py has those)."""
        return FirecrackerBackend(
            binary=binary,
            kvm=lambda: KvmReport("hardware", True, "a test double"),
            boot_timeout=boot_timeout,
            stop_grace=5.0,
            jail=jail,
            templates=templates,
        )


def ext4_stub(path: Path, size: int = 1 << 20) -> Path:
    """A sparse file with an ext4 superblock magic: what the backend checks before booting it."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        fh.seek(1080)
        fh.write(b"\x53\xef")
    return path


def boot_count(disk: Path) -> int:
    with open(disk, "rb") as fh:
        fh.seek(BOOT_COUNTER_OFFSET)
        return int(struct.unpack("<Q", fh.read(8))[0])


NOTHING = {"processes": set(), "sockets": [], "disk": False}


@pytest.fixture
def fake_vmm(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return write_fake_vmm(tmp_path / "bin")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    ws_id = "ws-" + secrets.token_hex(5)
    home = tmp_path / "home"
    ws_dir = home / "workspaces" / ws_id
    ws_dir.mkdir(parents=True)
    images = tmp_path / "image"
    images.mkdir()
    kernel = images / "vmlinux"
    kernel.write_bytes(b"\x7fELF" + b"\0" * 4092)
    initrd = images / "initrd.img"
    initrd.write_bytes(b"070701")
    state = tmp_path / "guest"
    boot_args = f"console=ttyS0 fake.port={PORT} fake.state={state}"
    image = GuestImage(kernel, initrd, ext4_stub(images / "rootfs.ext4"), boot_args, PORT)
    try:
        yield Setup(ws_id, home, ws_dir, image, state)
    finally:
        # Whatever a test left running goes, by the workspace's marker.
        for pid in pids_with_env(WORKSPACE_MARKER, ws_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run(backend: Backend[FirecrackerBoot], ws_dir: Path, boot: FirecrackerBoot, *argv: str) -> tuple[int, bytes]:
    with backend.connect(ws_dir, boot, timeout=5) as client:
        reply = client.call(Op.EXEC, {"argv": list(argv)})
    return int(reply.result["exit_code"]), reply.streams.get("stdout", b"")


def test_create_boots_a_configured_vm_whose_agent_runs_commands_and_delete_leaves_nothing(
    setup: Setup, fake_vmm: Path
) -> None:
    backend = setup.backend(fake_vmm)
    boot = backend.create(setup.ws_dir, setup.spec())
    assert boot.workspace == setup.ws_id
    assert pids_with_env(WORKSPACE_MARKER, setup.ws_id) >= {boot.vmm_pid}
    assert boot_count(setup.ws_dir / "disk.ext4") == 1  # the workspace's own copy was booted
    assert boot_count(setup.image.rootfs) == 0  # never the shared base image
    with FirecrackerApi(setup.ws_dir / "fc.sock") as api:
        config = api.vm_config()
    assert (config["machine-config"]["vcpu_count"], config["machine-config"]["mem_size_mib"]) == (1, 256)
    # The workspace boots its own links to the image's kernel and initramfs, named relative to
    # the VMM's cwd (the workspace directory), so nothing the VMM records holds a host path.
    assert (config["boot-source"]["kernel_image_path"], config["boot-source"]["initrd_path"]) == (
        "vmlinux",
        "initrd.img",
    )
    assert os.path.samefile(setup.ws_dir / "vmlinux", setup.image.kernel)
    boot_args = config["boot-source"]["boot_args"].split()
    assert boot_args[-4:-2] == ["reboot=k", "panic=1"]
    # The guest's init hands the agent its identity: this workspace's id and its own key.
    key = (setup.ws_dir / "agent.key").read_bytes()
    assert boot_args[-2:] == [f"roost.workspace={setup.ws_id}", f"roost.key={key.hex()}"]
    # Writeback: a guest flush reaches the host disk (Firecracker's default acknowledges it unflushed).
    assert [(d["drive_id"], d["path_on_host"], d["is_root_device"], d["cache_type"]) for d in config["drives"]] == [
        ("rootfs", "disk.ext4", True, "Writeback")
    ]
    assert config["entropy"] is not None  # a virtio-rng device: the guest's CSPRNG seeds from the host's
    assert config["vsock"] == {"guest_cid": 3, "uds_path": "v.sock"}
    assert run(backend, setup.ws_dir, boot, "echo", "inside") == (0, b"inside\n")
    assert backend.health(setup.ws_dir, boot) is None

    backend.destroy(setup.ws_dir, setup.ws_id, boot)
    assert setup.leftovers() == {**NOTHING, "disk": True}  # the caller removes the directory
    assert backend.health(setup.ws_dir, boot) is not None


def test_killing_the_vmm_mid_exec_is_agent_disconnected_and_the_workspace_turns_unhealthy(
    setup: Setup, fake_vmm: Path
) -> None:
    backend = setup.backend(fake_vmm)
    engine = Engine(setup.home, backends={"firecracker": backend})
    boot = backend.create(setup.ws_dir, setup.spec())
    now = utc_now()
    record = WorkspaceRecord(setup.ws_id, "debian:12", "firecracker", "running", now, now, boot=boot)
    engine.store.save(record)
    errors: list[BaseException] = []
    started = threading.Event()

    def long_exec() -> None:
        try:
            engine.call(record, ExecArgs(argv=("sleep", "30")), on_start=lambda _rid: started.set())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=long_exec)
    worker.start()
    try:
        assert started.wait(10)
        os.kill(boot.vmm_pid, signal.SIGKILL)
        worker.join(10)
        assert not worker.is_alive()
    finally:
        engine.close()
    [error] = errors
    assert isinstance(error, AgentError)
    assert error.code == "agent_disconnected"
    after = engine.store.load(setup.ws_id)
    assert after.state == "unhealthy"
    assert after.reason is not None and after.reason.startswith("the VMM died")
    with pytest.raises(AgentError) as caught:
        backend.connect(setup.ws_dir, boot, timeout=5)
    assert caught.value.code == "agent_unreachable"
    assert "the VMM died" in caught.value.message
    backend.destroy(setup.ws_dir, setup.ws_id, boot)
    assert setup.leftovers() == {**NOTHING, "disk": True}


def test_a_create_through_orchestration_prepares_the_guest_image_first_then_boots_it(
    setup: Setup, fake_vmm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[str] = []

    def env_image(cache: ImageCache, env: str, progress: ProgressFn | None) -> EnvImage:
        assert progress is not None
        progress(f"pulling {env}", 1, 2)
        return EnvImage(env, "sha256-env", "registry", utc_now(), 0)

    def guest_image(cache: ImageCache, env: str, progress: ProgressFn | None) -> GuestImage:
        assert progress is not None
        # Before the workspace exists: a build that fails leaves nothing behind.
        assert list(setup.home.glob("workspaces/*/workspace.json")) == []
        progress("building the root disk (mkfs.ext4)", 4, 6)
        return setup.image

    engine = Engine(setup.home, "firecracker", backends={"firecracker": setup.backend(fake_vmm)})
    options = lifecycle.CreateOptions(env="debian:12", progress=lambda step, _done, _total: heard.append(step))
    with monkeypatch.context() as patched:
        patched.setattr(boot_images, "ensure_image", env_image)
        patched.setattr(boot_images, "ensure_guest_image", guest_image)
        created = lifecycle.create(engine, options)
    ws_id = created.record.id
    try:
        assert heard == ["pulling debian:12", "building the root disk (mkfs.ext4)"]
        assert (created.record.state, created.record.image) == ("running", "sha256-env")
        assert isinstance(created.record.boot, FirecrackerBoot)
        assert boot_count(engine.store.dir(ws_id) / "disk.ext4") == 1  # its own copy of the image it was handed
        echoed = operations.run_exec(engine, engine.store.load(ws_id), operations.ExecSpec(["echo", "inside"]))
        assert echoed.stdout == "inside\n"
    finally:
        lifecycle.delete(engine, ws_id)
        engine.close()
    assert pids_with_env(WORKSPACE_MARKER, ws_id) == set()


def test_an_agent_that_never_answers_hits_the_boot_deadline_and_leaves_no_process_socket_or_disk(
    setup: Setup, fake_vmm: Path
) -> None:
    silent = replace(setup.image, boot_args=setup.image.boot_args + " fake.agent=never")
    backend = setup.backend(fake_vmm, boot_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.create(setup.ws_dir, setup.spec(guest_image=silent))
    assert caught.value.code == "boot_timeout"
    assert f"vsock port {PORT} within 0.5s" in caught.value.message
    assert "firecracker.log" in caught.value.hint
    assert time.monotonic() - started < 5
    assert setup.leftovers() == NOTHING


def test_a_vmm_that_dies_while_booting_fails_at_once_with_its_last_output(setup: Setup, fake_vmm: Path) -> None:
    dying = replace(setup.image, boot_args=setup.image.boot_args + " fake.exit_on_start=1")
    backend = setup.backend(fake_vmm, boot_timeout=30)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.create(setup.ws_dir, setup.spec(guest_image=dying))
    assert caught.value.code == "vmm_died"
    assert caught.value.message.startswith("the VMM died; its last output: fake guest: booting")
    assert time.monotonic() - started < 10
    assert setup.leftovers() == NOTHING


def test_stop_powers_the_guest_off_keeping_the_disk_and_start_boots_that_disk_again(
    setup: Setup, fake_vmm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = setup.backend(fake_vmm)
    boot = backend.create(setup.ws_dir, setup.spec())
    assert run(backend, setup.ws_dir, boot, "sh", "-c", "echo kept > note")[0] == 0
    synced: list[Path] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    stopped = backend.stop(setup.ws_dir, boot)
    assert synced == [setup.ws_dir / "disk.ext4"]  # after the VMM ended, the disk reached the host's
    monkeypatch.undo()
    assert stopped.vmm_pid is None
    assert stopped.stopped_cleanly is True  # the guest powered off on Ctrl-Alt-Del, nothing was killed
    assert setup.leftovers() == {**NOTHING, "disk": True}
    assert "Ctrl-Alt-Del" in (setup.ws_dir / "firecracker.log").read_text()

    # Pruning the image it was made from (a newer build replaced it) strands nothing.
    setup.image.kernel.unlink()
    setup.image.initrd.unlink()

    started = backend.start(setup.ws_dir, setup.spec(), stopped)
    assert started.vmm_pid not in (None, boot.vmm_pid)
    assert boot_count(setup.ws_dir / "disk.ext4") == 2  # the same disk, booted twice
    assert run(backend, setup.ws_dir, started, "cat", "note") == (0, b"kept\n")
    assert backend.health(setup.ws_dir, started) is None
    backend.destroy(setup.ws_dir, setup.ws_id, started)


def test_start_after_a_crash_removes_the_stale_sockets_the_dead_vmm_left(setup: Setup, fake_vmm: Path) -> None:
    backend = setup.backend(fake_vmm)
    boot = backend.create(setup.ws_dir, setup.spec())
    os.kill(boot.vmm_pid, signal.SIGKILL)
    wait_until(lambda: backend.health(setup.ws_dir, boot), what="health to notice the VMM is gone")
    assert (setup.ws_dir / "fc.sock").is_socket() and (setup.ws_dir / "v.sock").is_socket()

    restarted = backend.start(setup.ws_dir, setup.spec(), boot)
    assert run(backend, setup.ws_dir, restarted, "true") == (0, b"")
    backend.destroy(setup.ws_dir, setup.ws_id, restarted)


def test_start_refuses_a_workspace_disk_that_is_no_longer_ext4(setup: Setup, fake_vmm: Path) -> None:
    backend = setup.backend(fake_vmm)
    stopped = backend.stop(setup.ws_dir, backend.create(setup.ws_dir, setup.spec()))
    with open(setup.ws_dir / "disk.ext4", "r+b") as disk:
        disk.seek(1080)
        disk.write(b"\0\0")
    with pytest.raises(BackendError) as caught:
        backend.start(setup.ws_dir, setup.spec(), stopped)
    assert caught.value.code == "disk_corrupt"
    assert setup.leftovers() == {**NOTHING, "disk": True}


def test_a_vmm_that_stops_answering_its_api_is_reported_unhealthy(setup: Setup, fake_vmm: Path) -> None:
    backend = setup.backend(fake_vmm)
    boot = backend.create(setup.ws_dir, setup.spec())
    os.kill(boot.vmm_pid, signal.SIGSTOP)
    try:
        reason = backend.health(setup.ws_dir, boot)
    finally:
        os.kill(boot.vmm_pid, signal.SIGCONT)
    assert reason is not None and reason.startswith("the VMM does not answer on its API socket")
    backend.destroy(setup.ws_dir, setup.ws_id, boot)


# -- the real Firecracker binary: the failures it can show without KVM ---------------------------
def test_real_firecracker_refusing_the_kernel_is_a_vmm_fault_and_nothing_is_left(
    setup: Setup, real_binary: Path
) -> None:
    # An ELF magic over zeros: past roost's own check, refused by Firecracker's loader in milliseconds.
    backend = setup.backend(real_binary)
    with pytest.raises(BackendError) as caught:
        backend.create(setup.ws_dir, setup.spec())
    assert caught.value.code == "vmm_fault"
    assert caught.value.message.startswith("Start microvm error:")
    assert caught.value.details["call"] == "PUT /actions"
    assert setup.leftovers() == NOTHING


def test_a_jailed_create_gets_as_far_as_instance_start_and_a_refusal_leaves_no_vmm_or_cgroup(
    setup: Setup, real_binary: Path
) -> None:
    jailer, why = jailer_binary()
    if jailer is None or os.geteuid() != 0:
        pytest.skip(why or "the jailer needs root")
    backend = setup.backend(real_binary, jail=JailSettings(str(jailer), 65534, 65534, cgroup_version()))

    with pytest.raises(BackendError) as caught:
        backend.create(setup.ws_dir, setup.spec())

    # Machine, kernel, initrd, drive and vsock were all accepted inside the jail; only the stub kernel was not.
    assert caught.value.code == "vmm_fault"
    assert caught.value.details["call"] == "PUT /actions"
    log = (setup.ws_dir / "firecracker.log").read_text()
    assert f"--id {setup.ws_id}" in log and "--chroot-base-dir" in log
    assert [p.name for p in CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}/{setup.ws_id}")] == []
    assert setup.leftovers() == NOTHING


def test_an_image_without_its_initrd_fails_create_before_any_vmm_starts_and_nothing_is_left(
    setup: Setup, real_binary: Path
) -> None:
    backend = setup.backend(real_binary)
    gone = replace(setup.image, initrd=setup.image.initrd.with_name("gone.img"))
    with pytest.raises(BackendError) as caught:
        backend.create(setup.ws_dir, setup.spec(guest_image=gone))
    assert caught.value.code == "initrd_missing"
    assert "gone.img" in caught.value.message
    assert "roost.build_env(" in caught.value.hint
    assert setup.leftovers() == NOTHING
    assert sorted(p.name for p in setup.ws_dir.iterdir()) == []


def test_a_corrupt_base_disk_fails_create_before_any_vmm_starts(setup: Setup, fake_vmm: Path) -> None:
    (setup.image.rootfs).write_bytes(b"\0" * 4096)
    with pytest.raises(RoostError) as caught:
        setup.backend(fake_vmm).create(setup.ws_dir, setup.spec())
    assert caught.value.code == "disk_corrupt"
    assert setup.leftovers() == NOTHING
    assert not (setup.ws_dir / "firecracker.log").exists()
