"""Booting a guest image under QEMU with software emulation: the real-VM check on hosts without usable KVM.

`qemu-system-x86_64 -M microvm -accel tcg` boots the same kernel, initramfs
and disk a Firecracker workspace gets, with the agent on a virtio-serial
port (named `roost.agent`) that QEMU exposes as a Unix socket, because
vhost-vsock is usually what such hosts lack. The serial console is read
from QEMU's stdout by a thread, so waiting for roost's init to say the
agent is listening needs no polling. Used by the QEMU integration test
and the guest-image benchmark; the caller wraps `connect()`'s socket in
`roost.rpc.AgentClient`.

Imports: images.vm.build, errors and the standard library.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

from roost.errors import ImageError
from roost.images.vm.build import GuestImage

QEMU = "qemu-system-x86_64"
READY_MARK = "roost-agent: listening on "
# Under TCG the kernel hangs after "Marking TSC unstable" without a given TSC rate.
# microvm honours ACPI power-off, and has no keyboard controller for reboot=k.
QEMU_BOOT_ARGS = "tsc_early_khz=2000000 roost.agent=serial roost.halt=poweroff"


def qemu_binary() -> str | None:
    return shutil.which(QEMU)


class QemuGuest:
    """One guest booted from a private copy of the image's disk; kill() (or the with-block) ends it."""

    def __init__(self, image: GuestImage, workdir: Path, *, memory_mib: int = 512, extra_args: str = "") -> None:
        self.image = image
        self.workdir = workdir
        self.disk = workdir / "disk.img"
        self.socket_path = workdir / "agent.sock"
        self.console_path = workdir / "console.log"
        self.memory_mib = memory_mib
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_after: float | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ended = threading.Event()

    def argv(self, binary: str) -> list[str]:
        append = f"{self.image.boot_args} {QEMU_BOOT_ARGS} {self.extra_args}".strip()
        return [
            binary,
            "-M",
            "microvm",
            "-accel",
            "tcg",
            "-m",
            str(self.memory_mib),
            "-no-reboot",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-kernel",
            str(self.image.kernel),
            "-initrd",
            str(self.image.initrd),
            "-append",
            append,
            "-drive",
            f"id=root,file={self.disk},format=raw,if=none",
            "-device",
            "virtio-blk-device,drive=root",
            "-device",
            "virtio-serial-device",
            "-chardev",
            f"socket,id=agent,path={self.socket_path},server=on,wait=off",
            "-device",
            "virtserialport,chardev=agent,name=roost.agent",
            "-serial",
            "stdio",
        ]

    def start(self) -> None:
        """Copy the disk (sparse) and start QEMU.

        Raises:
            ImageError: no_qemu, guest_boot_failed.
        """
        binary = qemu_binary()
        if binary is None:
            raise ImageError(f"{QEMU} is not installed", code="no_qemu", hint="apt-get install qemu-system-x86")
        self.workdir.mkdir(parents=True, exist_ok=True)
        copy = subprocess.run(
            ["cp", "--sparse=always", str(self.image.rootfs), str(self.disk)],
            capture_output=True,
            text=True,
            check=False,
        )
        if copy.returncode != 0:
            raise ImageError(f"cannot copy the guest disk: {copy.stderr.strip()}", code="guest_boot_failed")
        os.chmod(self.disk, 0o600)
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.argv(binary), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        threading.Thread(target=self._read_console, name="qemu-console", daemon=True).start()

    def _read_console(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.console_path, "wb") as log:
            for raw in self.process.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip()
                with self._lock:
                    self._lines.append(line)
                if READY_MARK in line and not self._ready.is_set():
                    self.ready_after = time.monotonic() - self.started_at
                    self._ready.set()
        self.process.stdout.close()
        self._ended.set()
        self._ready.set()  # wake a waiter: the console ended first

    @property
    def console(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def wait_ready(self, timeout: float) -> float:
        """Seconds from QEMU's start to roost-init's ready line.

        Raises:
            ImageError: guest_boot_failed (QEMU ended first, or the deadline passed), with the console's tail.
        """
        self._ready.wait(timeout)
        if self.ready_after is not None:
            return self.ready_after
        why = "QEMU exited before the agent was ready" if self._ended.is_set() else f"no agent after {timeout:.0f} s"
        raise ImageError(
            f"the guest did not boot: {why}",
            code="guest_boot_failed",
            details={"console_tail": self.console.splitlines()[-40:]},
        )

    def connect(self) -> socket.socket:
        """A stream to the agent (the virtio-serial port's host end)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.socket_path))
        return sock

    def wait_exit(self, timeout: float) -> int | None:
        """QEMU's exit status, or None if it is still running after `timeout` seconds."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> QemuGuest:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
