"""roost's init: PID 1 inside a microVM, started by the initramfs's switch_root as /sbin/roost-init.

It mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /run and /tmp, sets the
hostname, brings up loopback, makes /workspace and the agent's state dir,
starts the guest agent (on the python3 running init, or with the command prefix
/sbin/roost-init hands `main`: roost's python bundle started through its own
loader) and then only reaps zombies and waits for signals.
The agent listens on vsock (`roost.agent=vsock:PORT` on the kernel command
line, port 1024 by default) or on a virtio-serial port
(`roost.agent=serial`, the port named `roost.agent`; or `serial:NAME`,
`serial:/dev/vportNpM`), which init opens first and holds for the whole
session: bytes a host sends while the guest has the port closed are lost.

When the agent exits cleanly (after a `shutdown` call), or on SIGTERM,
SIGINT (Ctrl-Alt-Del) or SIGPWR, init stops every process, syncs, unmounts
and ends the machine: `roost.halt=reboot` (default; with `reboot=k`
Firecracker exits on the reset and QEMU with `-no-reboot`) or
`roost.halt=poweroff` (ACPI power-off, which QEMU honours and Firecracker
on x86 does not). An agent that crashes is restarted, a few times.

With `roost.net=ADDRESS/PREFIX,GATEWAY,NAMESERVER` (the firecracker
backend's TAP) init also configures eth0 and /etc/resolv.conf (see
`roost.guest.network`) before the agent starts.

Imports: roost.guest.network, roost.guest.system, roost.protocol.identity and the standard library only (this file ships inside the guest).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from roost.guest.network import GuestNetwork, parse_network
from roost.guest.system import MS_NODEV, MS_NOEXEC, MS_NOSUID, LinuxSystem
from roost.protocol.identity import AgentIdentity

DEFAULT_VSOCK_PORT = 1024
SERIAL_PORT_NAME = "roost.agent"
# How init hands the agent its identity key (hex); see roost.agent.__main__.
KEY_ENV = "ROOST_AGENT_KEY"
HALT_COMMANDS = ("reboot", "poweroff")
WORKSPACE = "/workspace"
STATE_DIR = "/var/lib/roost-agent"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AGENT_LAUNCH = "import sys; sys.path.insert(0, '/opt/roost'); from roost.agent.__main__ import main; sys.exit(main())"
# (target, fstype, flags, options), mounted in this order.
MOUNTS = (
    ("/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
    ("/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
    ("/dev", "devtmpfs", MS_NOSUID, "mode=0755"),
    ("/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"),
    ("/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"),
    ("/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"),
    ("/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"),
)
# Unmounted on the way down (the others go with the machine).
UNMOUNTS = ("/tmp", "/run", "/dev/shm", "/dev/pts")
DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGPWR)
# Crash-looping agents: at most this many restarts within the window, then the machine stops.
MAX_RESTARTS = 3
RESTART_WINDOW = 60.0
PORT_DEADLINE = 10.0
AGENT_STOP_DEADLINE = 5.0
PROCESS_STOP_DEADLINE = 3.0


@dataclass(frozen=True)
class InitConfig:
    """What the kernel command line asks of init."""

    agent: str = f"vsock:{DEFAULT_VSOCK_PORT}"
    halt: str = "reboot"
    hostname: str = "roost"  # a workspace's own id, when the command line names one
    # The workspace the agent serves and the hex key it proves that with (both or neither).
    workspace_id: str = ""
    key_hex: str = ""
    # eth0 and the resolver, when the host gives the guest a network device (None: loopback only).
    network: GuestNetwork | None = None


def split_cmdline(text: str) -> list[str]:
    """The kernel's own splitting: whitespace separates, double quotes group (and are dropped)."""
    args: list[str] = []
    current: list[str] = []
    quoted = False
    started = False
    for char in text:
        if char == '"':
            quoted = not quoted
            started = True
        elif char.isspace() and not quoted:
            if started:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
            started = True
    if started:
        args.append("".join(current))
    return args


def agent_address(value: str) -> str | None:
    """A `roost.agent=` value as a listen address (`vsock:PORT`, `serial:NAME|PATH`), or None if malformed."""
    kind, _, where = value.partition(":")
    if kind == "vsock":
        if not where:
            return f"vsock:{DEFAULT_VSOCK_PORT}"
        return f"vsock:{int(where)}" if where.isdigit() and 0 < int(where) < 2**32 else None
    if kind == "serial":
        return f"serial:{where or SERIAL_PORT_NAME}"
    return None


def config_from_cmdline(text: str, warn: list[str] | None = None) -> InitConfig:
    """Init's settings from /proc/cmdline (the last `roost.*=` of a kind wins; bad values keep the default)."""
    config = InitConfig()
    for arg in split_cmdline(text):
        key, _, value = arg.partition("=")
        if key == "roost.agent":
            address = agent_address(value)
            if address is None:
                if warn is not None:
                    warn.append(f"ignoring roost.agent={value}: use vsock[:PORT] or serial[:NAME|PATH]")
                continue
            config = dataclasses.replace(config, agent=address)
        elif key == "roost.halt":
            if value not in HALT_COMMANDS:
                if warn is not None:
                    warn.append(f"ignoring roost.halt={value}: use reboot or poweroff")
                continue
            config = dataclasses.replace(config, halt=value)
        elif key == "roost.workspace":
            config = dataclasses.replace(config, workspace_id=value)
        elif key == "roost.net":
            network = parse_network(value)
            if network is None:
                if warn is not None:
                    warn.append(f"ignoring roost.net={value}: use ADDRESS/PREFIX,GATEWAY,NAMESERVER")
                continue
            config = dataclasses.replace(config, network=network)
        elif key == "roost.key":
            if not _is_hex(value):
                if warn is not None:
                    warn.append("ignoring roost.key: not a hex string")
                continue
            config = dataclasses.replace(config, key_hex=value)
    return config


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return bool(value)


def agent_argv(python: Sequence[str], listen: str, workspace_id: str = "") -> list[str]:
    """The agent's command line; `python` is the argv prefix that starts a python3 (one word, or
    roost's bundle's loader with its library path and python3)."""
    identity = ["--workspace-id", workspace_id] if workspace_id else []
    return [
        *python,
        "-I",
        "-c",
        AGENT_LAUNCH,
        "--listen",
        listen,
        "--workspace-root",
        WORKSPACE,
        "--state-dir",
        STATE_DIR,
        *identity,
    ]


def exit_description(status: int) -> tuple[bool, str]:
    """(clean?, words) for a wait status."""
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return code == 0, f"exit {code}"
    if os.WIFSIGNALED(status):
        return False, f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return False, f"status {status}"


class System(Protocol):
    """The OS calls init makes (roost.guest.system.LinuxSystem in the guest, a fake in tests)."""

    def say(self, message: str) -> None: ...
    def monotonic(self) -> float: ...
    def is_mounted(self, target: str) -> bool: ...
    def mount(self, source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None: ...
    def remount_readonly(self, target: str) -> None: ...
    def umount(self, target: str) -> None: ...
    def makedirs(self, path: str, mode: int) -> None: ...
    def symlink(self, target: str, path: str) -> None: ...
    def sync(self) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def set_machine_id(self, machine_id: str) -> None: ...
    def loopback_up(self) -> None: ...
    def configure_network(self, network: GuestNetwork) -> None: ...
    def open_port(self, path: str) -> int: ...
    def read_text(self, path: str) -> str: ...
    def listdir(self, path: str) -> list[str]: ...
    def take_signals(self) -> None: ...
    def spawn(self, argv: Sequence[str], env: dict[str, str]) -> int: ...
    def wait_signal(self, timeout: float) -> int | None: ...
    def reap(self) -> list[tuple[int, int]]: ...
    def has_children(self) -> bool: ...
    def kill(self, pid: int, sig: int) -> None: ...
    def kill_all(self, sig: int) -> None: ...
    def reboot(self, command: str) -> None: ...


def find_serial_port(system: System, name: str, sysfs: str = "/sys/class/virtio-ports") -> str | None:
    """/dev/vportNpM of the virtio-serial port called `name`, if the kernel has it."""
    for port in system.listdir(sysfs):
        try:
            if system.read_text(f"{sysfs}/{port}/name").strip() == name:
                return f"/dev/{port}"
        except OSError:
            continue
    return None


class Init:
    """PID 1: set the machine up, keep the agent running, take it down cleanly."""

    def __init__(self, system: System, python: Sequence[str] = ()) -> None:
        self.system = system
        self.python = tuple(python) or (sys.executable,)
        self.config = InitConfig()
        self.agent_pid: int | None = None
        self._listen = ""
        self._shown = ""
        self._restarts: list[float] = []

    def boot(self) -> None:
        """Mounts, hostname, loopback and directories; a failure here is reported, not fatal."""
        system = self.system
        system.take_signals()
        for target, fstype, flags, options in MOUNTS:
            if system.is_mounted(target):
                continue
            try:
                system.mount(fstype, target, fstype, flags, options)
            except OSError as exc:
                system.say(f"cannot mount {target}: {exc.strerror or exc}")
        for target, link in DEV_LINKS:
            try:
                system.symlink(target, link)
            except OSError:
                pass
        warnings: list[str] = []
        try:
            self.config = config_from_cmdline(system.read_text("/proc/cmdline"), warnings)
        except OSError as exc:
            system.say(f"cannot read /proc/cmdline ({exc.strerror}); using defaults")
        for warning in warnings:
            system.say(warning)
        steps: tuple[tuple[str, Callable[[], None]], ...] = (
            ("set the hostname", lambda: system.sethostname(self.config.workspace_id or self.config.hostname)),
            ("write the machine-id", self._write_machine_id),
            ("bring up loopback", system.loopback_up),
            ("configure the network", self._configure_network),
            ("make the workspace", lambda: system.makedirs(WORKSPACE, 0o755)),
            ("make the agent state dir", lambda: system.makedirs(STATE_DIR, 0o700)),
            ("make /run/roost", lambda: system.makedirs("/run/roost", 0o700)),
        )
        for what, step in steps:
            try:
                step()
            except OSError as exc:
                system.say(f"cannot {what}: {exc}")

    def _write_machine_id(self) -> None:
        """The workspace's own machine-id (an image holds one that every workspace made from it would share)."""
        if self.config.workspace_id and self.config.key_hex:
            identity = AgentIdentity(self.config.workspace_id, bytes.fromhex(self.config.key_hex))
            self.system.set_machine_id(identity.machine_id)

    def _configure_network(self) -> None:
        if self.config.network is not None:
            self.system.configure_network(self.config.network)

    def open_listen(self) -> None:
        """Decide the agent's address; a serial port is found (with a deadline) and opened here.

        Raises:
            OSError: the serial port does not exist or cannot be opened.
        """
        kind, _, where = self.config.agent.partition(":")
        if kind != "serial":
            self._listen = self._shown = self.config.agent
            return
        path = where if where.startswith("/") else None
        deadline = self.system.monotonic() + PORT_DEADLINE
        while path is None:
            path = find_serial_port(self.system, where)
            if path is None:
                if self.system.monotonic() >= deadline:
                    raise OSError(f"no virtio-serial port named {where!r}")
                self.system.wait_signal(0.05)  # the device may still be probing
        fd = self.system.open_port(path)
        self._listen, self._shown = f"serial:fd:{fd}", f"serial:{path}"

    def start_agent(self) -> None:
        env = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        workspace_id = ""
        if self.config.workspace_id and self.config.key_hex:
            workspace_id = self.config.workspace_id
            env[KEY_ENV] = self.config.key_hex  # the agent keeps it out of what it runs
        self.agent_pid = self.system.spawn(agent_argv(self.python, self._listen, workspace_id), env)
        # "listening" is the agent's own line, once it has bound its socket (see roost.agent.__main__).
        self.system.say(f"starting the agent on {self._shown} (pid {self.agent_pid})")

    def _may_restart(self) -> bool:
        now = self.system.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
        self._restarts.append(now)
        return len(self._restarts) <= MAX_RESTARTS

    def supervise(self) -> str:
        """Reap and wait until the machine should stop; return why."""
        self.start_agent()
        while True:
            sig = self.system.wait_signal(30.0)
            if sig in STOP_SIGNALS:
                return f"received {signal.Signals(sig).name}"
            for pid, status in self.system.reap():
                if pid != self.agent_pid:
                    continue
                self.agent_pid = None
                clean, words = exit_description(status)
                if clean:
                    return "the agent stopped"
                if not self._may_restart():
                    return f"the agent keeps failing ({words})"
                self.system.say(f"agent ended ({words}); restarting it")
                self.start_agent()

    def _wait_for(self, done: Callable[[], bool], deadline: float) -> bool:
        until = self.system.monotonic() + deadline
        while True:
            for pid, _status in self.system.reap():
                if pid == self.agent_pid:
                    self.agent_pid = None
            if done():
                return True
            remaining = until - self.system.monotonic()
            if remaining <= 0:
                return False
            self.system.wait_signal(remaining)

    def halt(self, reason: str) -> None:
        """Stop everything, sync, unmount and end the machine."""
        system = self.system
        system.say(f"shutting down: {reason}")
        if self.agent_pid is not None:
            system.kill(self.agent_pid, signal.SIGTERM)
            self._wait_for(lambda: self.agent_pid is None, AGENT_STOP_DEADLINE)
        system.kill_all(signal.SIGTERM)
        if not self._wait_for(lambda: not system.has_children(), PROCESS_STOP_DEADLINE):
            system.kill_all(signal.SIGKILL)
            self._wait_for(lambda: not system.has_children(), PROCESS_STOP_DEADLINE)
        system.sync()
        for target in UNMOUNTS:
            try:
                system.umount(target)
            except OSError:
                pass
        try:
            system.remount_readonly("/")
        except OSError as exc:
            system.say(f"cannot remount / read-only: {exc.strerror or exc}")
        system.sync()
        system.say(f"{self.config.halt} now")
        system.reboot(self.config.halt)

    def run(self) -> None:
        try:
            self.boot()
            self.open_listen()
            reason = self.supervise()
        except Exception as exc:  # PID 1 must never just die: that panics the kernel
            reason = f"init failed: {type(exc).__name__}: {exc}"
        self.halt(reason)


def main(python: Sequence[str] = ()) -> int:
    """PID 1's entry; `python` starts the agent's python3 (default: the one running init)."""
    system = LinuxSystem()
    if os.getpid() != 1:
        system.say("refusing to run: this is PID 1 of a roost microVM only")
        return 2
    try:
        Init(system, python).run()
    except Exception as exc:  # halting itself failed; still end the machine
        system.say(f"halt failed: {type(exc).__name__}: {exc}")
        system.reboot("reboot")
    # reboot(2) returned: nothing left to do but wait for the VMM to notice.
    while True:
        system.wait_signal(3600.0)
