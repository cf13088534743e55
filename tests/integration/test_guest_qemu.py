"""The guest image in a real VM: Debian's cloud kernel, roost's initramfs, init and agent, booted under QEMU.

QEMU runs with software emulation (`-M microvm -accel tcg`): this host's KVM cannot boot
stock kernels, and it has no vhost-vsock, so the agent listens on a virtio-serial port that
QEMU exposes as a Unix socket, and the normal `AgentClient` talks to it. This proves the
kernel extraction, the module set and load order, the initramfs, the ext4 disk, roost's
init (mounts, PID 1, clean power-off) and the agent, end to end, for debian:12 (the image's
own python3) and for a busybox-static image with no python3 and no libc (roost's python
bundle on the disk, started through its own loader).

The env rootfs comes from the shared image cache (`make images`), the busybox image from the
local registry (built by the test); the kernel and busybox packages from apt's mirror (or, for
the busybox image's private cache, hard links to what the shared cache already fetched).
Without QEMU, or when the packages cannot be had, it skips.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_images import BUSYBOX, busybox_tree, push_tree

from helpers import SHARED_IMAGES, wait_until
from roost.agent.__main__ import LISTENING
from roost.errors import ImageError
from roost.images.cache import ImageCache
from roost.images.python_bundle import BUNDLE_INTERPRETER, bundle_command
from roost.images.vm.build import GuestImage, ensure_guest_image
from roost.images.vm.qemu import READY_MARK, QemuGuest, qemu_binary
from roost.protocol.identity import AgentIdentity, new_key
from roost.protocol.ops.agent import RestoredArgs
from roost.rpc import AgentClient

BOOT_DEADLINE = 60.0
EXIT_DEADLINE = 30.0
# Reasons a build cannot happen on this host (as opposed to a build that is wrong).
UNAVAILABLE = {"no_apt", "package_unavailable", "download_failed", "no_bootstrap_tool", "no_mirror", "no_mkfs"}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def guest_image() -> GuestImage:
    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    try:
        return ensure_guest_image(ImageCache(SHARED_IMAGES), "debian:12")
    except ImageError as exc:
        if exc.code in UNAVAILABLE:
            pytest.skip(f"the guest image cannot be built here: {exc.code}: {exc.message}")
        raise


@pytest.fixture(scope="module")
def busybox_guest_image(local_registry: str, tmp_path_factory: pytest.TempPathFactory) -> GuestImage:
    """The guest image of a busybox-static image (no python3, no libc), built in a private cache
    that reuses the shared cache's downloaded kernel and busybox packages."""
    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed (scripts/install-system-deps.sh)")
    scratch = tmp_path_factory.mktemp("busybox-guest")
    reference = f"{local_registry}/test/guest-busybox:1"
    push_tree(local_registry, busybox_tree(scratch), scratch, repository="test/guest-busybox", tag="1")
    cache = ImageCache(scratch / "images")
    shared_guest = SHARED_IMAGES / "guest"
    (cache.root / "guest").mkdir(parents=True)
    for name in ("debs", "kernels"):
        if (shared_guest / name).is_dir():
            subprocess.run(["cp", "-al", str(shared_guest / name), str(cache.root / "guest" / name)], check=True)
    try:
        return ensure_guest_image(cache, reference)
    except ImageError as exc:
        if exc.code in UNAVAILABLE:
            pytest.skip(f"the guest image cannot be built here: {exc.code}: {exc.message}")
        raise


@pytest.fixture
def guest(guest_image: GuestImage, tmp_path: Path) -> Iterator[QemuGuest]:
    vm = QemuGuest(guest_image, tmp_path)
    vm.start()
    try:
        yield vm
    finally:
        vm.kill()


def _kernel_release(image: GuestImage) -> str:
    return str(json.loads((image.kernel.parent / "guest.json").read_text())["kernel"]["release"])


def _debugfs_cat(disk: Path, path: str) -> bytes:
    result = subprocess.run(["debugfs", "-R", f"cat {path}", str(disk)], capture_output=True, check=True)
    return result.stdout


def test_guest_boots_runs_agent_calls_and_powers_off_cleanly(guest_image: GuestImage, guest: QemuGuest) -> None:
    assert READY_MARK == LISTENING  # the QEMU driver waits for the agent's own line
    guest.wait_ready(BOOT_DEADLINE)
    # Init names the port it opened; the agent says "listening" itself, once it has bound it.
    assert "roost-init: starting the agent on serial:/dev/vport" in guest.console
    assert f"{LISTENING}serial:fd:" in guest.console
    assert guest.console.index("roost-init: starting the agent") < guest.console.index(LISTENING)
    payload = bytes(range(256)) * 64 + b"\0end"
    with AgentClient(guest.connect()) as client:
        uname = client.call("exec", {"argv": ["uname", "-r"]})
        assert uname.result["exit_code"] == 0
        assert uname.streams["stdout"].decode().strip() == _kernel_release(guest_image)
        assert uname.streams["stdout"].decode().strip().endswith("-cloud-amd64")

        init = client.call("exec", {"argv": ["cat", "/proc/1/cmdline"]})
        assert b"/sbin/roost-init" in init.streams["stdout"].split(b"\0")

        mounts = client.call("exec", {"argv": ["cat", "/proc/mounts"]}).streams["stdout"].decode()
        mounted = {line.split()[1] for line in mounts.splitlines()}
        assert {"/proc", "/sys", "/dev", "/dev/pts", "/run", "/tmp"} <= mounted
        host = client.call("exec", {"argv": ["hostname"]}).streams["stdout"].decode().strip()
        assert host == "roost"

        # Orphans end up with PID 1, which must reap them.
        client.call("exec", {"command": "for i in 1 2 3; do (exit 0) & done; exit 0"})

        def no_zombies() -> bool:
            states = client.call("exec", {"argv": ["ps", "-eo", "stat="]}).streams["stdout"].decode().split()
            return not any(state.startswith("Z") for state in states)

        wait_until(no_zombies, timeout=10.0, interval=0.2, what="PID 1 to reap orphaned zombies")

        written = client.call("file.write", {"path": "/workspace/round-trip.bin"}, upload=[payload])
        assert written.result["size"] == len(payload)
        read = client.call("file.read", {"path": "/workspace/round-trip.bin"})
        assert read.body == payload

        # The steps a clone resumed from a template takes, called as a restore would, on a real kernel.
        renewed_identity = AgentIdentity("ws-0123456789", new_key())
        a_day_ahead = time.time_ns() + 86_400 * 10**9
        renew = RestoredArgs(
            workspace_id=renewed_identity.workspace_id,
            key_hex=renewed_identity.key.hex(),
            entropy_hex=os.urandom(64).hex(),
            unix_time_ns=a_day_ahead,
            hostname="ws-0123456789",
            machine_id="0123456789abcdef0123456789abcdef",
        )
        assert client.call(renew.OP, renew.to_wire()).result["entropy_bits"] == 512  # RNDADDENTROPY took it
        seen = client.call("exec", {"command": "hostname; cat /etc/machine-id; date +%s"}).streams["stdout"].split()
        assert seen[:2] == [b"ws-0123456789", b"0123456789abcdef0123456789abcdef"]
        assert abs(int(seen[2]) - a_day_ahead // 10**9) < 60
        # (That it then proves the new identity is test_agent_restored's: a serial port carries one session.)
        assert client.call("shutdown").result["stopping"] is True
    assert guest.wait_exit(EXIT_DEADLINE) == 0, f"QEMU did not power off:\n{guest.console[-3000:]}"
    assert "roost-init: shutting down: the agent stopped" in guest.console
    if shutil.which("e2fsck") and shutil.which("debugfs"):
        # A clean shutdown leaves a consistent disk holding what was written.
        check = subprocess.run(["e2fsck", "-fn", str(guest.disk)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        assert _debugfs_cat(guest.disk, "/workspace/round-trip.bin") == payload


def test_a_root_disk_that_is_not_ext4_ends_the_vm_with_the_reason(guest_image: GuestImage, tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(4 << 20))
    vm = QemuGuest(dataclasses.replace(guest_image, rootfs=blank), tmp_path / "vm")
    vm.start()
    try:
        with pytest.raises(ImageError) as caught:
            vm.wait_ready(BOOT_DEADLINE)
        assert caught.value.code == "guest_boot_failed"
        assert "QEMU exited before the agent was ready" in caught.value.message
        assert vm.wait_exit(EXIT_DEADLINE) == 0
        assert "roost-initramfs: cannot mount /dev/vda; ending the VM (poweroff)" in vm.console
    finally:
        vm.kill()


def test_an_image_without_python3_boots_on_roosts_bundle_and_serves_the_agent(
    busybox_guest_image: GuestImage, tmp_path: Path
) -> None:
    manifest = json.loads((busybox_guest_image.kernel.parent / "guest.json").read_text())
    assert manifest["python"] == BUNDLE_INTERPRETER
    vm = QemuGuest(busybox_guest_image, tmp_path)
    vm.start()
    try:
        vm.wait_ready(BOOT_DEADLINE)
        with AgentClient(vm.connect()) as client:
            echoed = client.call("exec", {"argv": ["echo", "hello", "from", "busybox"]})
            assert (echoed.result["exit_code"], echoed.streams["stdout"]) == (0, b"hello from busybox\n")
            init = client.call("exec", {"argv": ["cat", "/proc/1/cmdline"]}).streams["stdout"].split(b"\0")
            assert [word.decode() for word in init[:6]] == [*bundle_command(), "-I", "/sbin/roost-init"]
            agents = client.call("exec", {"command": "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"})
            assert f"{' '.join(bundle_command())} -I -c" in agents.streams["stdout"].decode()
            python = client.call("exec", {"command": "command -v python3 || echo none"})
            assert python.streams["stdout"] == b"none\n"
            written = client.call("file.write", {"path": "/workspace/note.txt"}, upload=[b"from the host\n"])
            assert written.result["size"] == len(b"from the host\n")
            assert client.call("file.read", {"path": "/workspace/note.txt"}).body == b"from the host\n"
            assert client.call("exec", {"argv": ["cat", "/workspace/note.txt"]}).streams["stdout"] == b"from the host\n"
            assert client.call("shutdown").result["stopping"] is True
        assert vm.wait_exit(EXIT_DEADLINE) == 0, f"QEMU did not power off:\n{vm.console[-3000:]}"
        assert "roost-init: shutting down: the agent stopped" in vm.console
    finally:
        vm.kill()
