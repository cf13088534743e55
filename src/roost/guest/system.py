"""Every operating-system call roost's init makes, behind one object, so the init logic can be tested without a VM.

mount, unmount, hostname, the loopback interface, eth0 and resolv.conf, Ctrl-Alt-Del handling,
spawning the agent with a clean signal state, signals and reaping, sync
and the final reboot(2). Linux only; runs as PID 1 under the guest's python3.

Imports: roost.guest.network, the agent's `system.machine` and the standard library only (this file ships inside the guest).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence

from roost.agent.system.machine import OsMachine
from roost.guest.network import GuestNetwork, configure_interface, write_resolv_conf

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MNT_DETACH = 0x2
RB_AUTOBOOT = 0x01234567
RB_POWER_OFF = 0x4321FEDC
RB_DISABLE_CAD = 0
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
# Signals init takes synchronously (sigtimedwait); children start with them at their defaults.
HANDLED_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPWR, signal.SIGHUP)
# Python ignores these at start-up; a child must not inherit that.
_RESET_SIGNALS = (*HANDLED_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)


class LinuxSystem:
    """The real machine, as PID 1 sees it."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        self._libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self._libc.reboot.argtypes = [ctypes.c_int]

    # -- output and time -------------------------------------------------------
    def say(self, message: str) -> None:
        try:
            os.write(2, f"roost-init: {message}\n".encode(errors="replace"))
        except OSError:
            pass

    def monotonic(self) -> float:
        return time.monotonic()

    # -- filesystems -------------------------------------------------------------
    def _check(self, result: int, what: str) -> None:
        if result != 0:
            number = ctypes.get_errno()
            raise OSError(number, f"{what}: {os.strerror(number)}")

    def is_mounted(self, target: str) -> bool:
        return os.path.ismount(target)

    def mount(self, source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
        os.makedirs(target, exist_ok=True)
        result = self._libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode() or None)
        self._check(result, f"mount {fstype} on {target}")

    def remount_readonly(self, target: str) -> None:
        self._check(self._libc.mount(None, target.encode(), None, MS_REMOUNT | MS_RDONLY, None), f"remount {target}")

    def umount(self, target: str) -> None:
        self._check(self._libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")

    def makedirs(self, path: str, mode: int) -> None:
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)

    def symlink(self, target: str, path: str) -> None:
        if not os.path.lexists(path):
            os.symlink(target, path)

    def sync(self) -> None:
        os.sync()

    # -- identity and devices ------------------------------------------------------
    def sethostname(self, name: str) -> None:
        socket.sethostname(name)

    def set_machine_id(self, machine_id: str) -> None:
        OsMachine().set_machine_id(machine_id)

    def loopback_up(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))

    def configure_network(self, network: GuestNetwork) -> None:
        configure_interface(network)
        write_resolv_conf(network)

    def open_port(self, path: str) -> int:
        """The port open for the whole session, inheritable so the agent gets it as-is."""
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        os.set_inheritable(fd, True)
        return fd

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    # -- processes and signals -----------------------------------------------------
    def take_signals(self) -> None:
        """Receive init's signals only through wait_signal(); Ctrl-Alt-Del becomes SIGINT."""
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, lambda *_: None)
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        if self._libc.reboot(RB_DISABLE_CAD) != 0:  # without it, Ctrl-Alt-Del resets at once: report, go on
            self.say(f"cannot take over Ctrl-Alt-Del: {os.strerror(ctypes.get_errno())}")

    def spawn(self, argv: Sequence[str], env: dict[str, str]) -> int:
        return os.posix_spawn(
            argv[0],
            list(argv),
            env,
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)],
            setsid=True,
            setsigmask=(),
            setsigdef=_RESET_SIGNALS,
        )

    def wait_signal(self, timeout: float) -> int | None:
        """The next of init's signals, or None after `timeout` seconds."""
        info = signal.sigtimedwait(HANDLED_SIGNALS, max(timeout, 0.0))
        return None if info is None else info.si_signo

    def reap(self) -> list[tuple[int, int]]:
        """(pid, wait status) of every child that has exited; never blocks."""
        reaped = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            reaped.append((pid, status))
        return reaped

    def has_children(self) -> bool:
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return True

    def kill(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def kill_all(self, sig: int) -> None:
        """`sig` to every process but init itself."""
        try:
            os.kill(-1, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    def reboot(self, command: str) -> None:
        """Power off or reboot (reboot=k: the VMM exits). Returns only if the kernel refused."""
        self._libc.reboot(RB_POWER_OFF if command == "poweroff" else RB_AUTOBOOT)
        self.say(f"reboot({command}) failed: {os.strerror(ctypes.get_errno())}")
        sys.stderr.flush()
