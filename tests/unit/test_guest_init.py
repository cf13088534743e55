"""roost's init (PID 1) against a fake machine: command-line settings, set-up, supervising the agent, clean halt."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from roost.guest.init import (
    MAX_RESTARTS,
    MOUNTS,
    STATE_DIR,
    WORKSPACE,
    Init,
    InitConfig,
    agent_address,
    config_from_cmdline,
    find_serial_port,
    split_cmdline,
)
from roost.guest.network import GuestNetwork, parse_network
from roost.protocol.identity import AgentIdentity

AGENT_OK = 0  # wait status of exit(0)
AGENT_CRASHED = 1 << 8  # exit(1)


@dataclass
class FakeSystem:
    """The machine as init sees it; every call is recorded in order."""

    cmdline: str = "console=ttyS0"
    mounted: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, list[str]] = field(default_factory=dict)
    signals: list[int | None] = field(default_factory=list)
    exits: list[list[tuple[int, int]]] = field(default_factory=list)
    children_after_term: bool = False
    calls: list[tuple[object, ...]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    now: float = 0.0
    next_pid: int = 100
    spawned_env: dict[str, str] = field(default_factory=dict)

    def say(self, message: str) -> None:
        self.said.append(message)

    def monotonic(self) -> float:
        return self.now

    def is_mounted(self, target: str) -> bool:
        return target in self.mounted

    def mount(self, source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
        self.calls.append(("mount", fstype, target))
        self.mounted.add(target)

    def remount_readonly(self, target: str) -> None:
        self.calls.append(("remount_ro", target))

    def umount(self, target: str) -> None:
        self.calls.append(("umount", target))

    def makedirs(self, path: str, mode: int) -> None:
        self.calls.append(("mkdir", path, mode))

    def symlink(self, target: str, path: str) -> None:
        self.calls.append(("symlink", target, path))

    def sync(self) -> None:
        self.calls.append(("sync",))

    def sethostname(self, name: str) -> None:
        self.calls.append(("hostname", name))

    def set_machine_id(self, machine_id: str) -> None:
        self.calls.append(("machine-id", machine_id))

    def loopback_up(self) -> None:
        self.calls.append(("lo",))

    def configure_network(self, network: GuestNetwork) -> None:
        self.calls.append(("network", network))

    def open_port(self, path: str) -> int:
        self.calls.append(("open_port", path))
        return 7

    def read_text(self, path: str) -> str:
        if path == "/proc/cmdline":
            return self.cmdline
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def listdir(self, path: str) -> list[str]:
        return self.dirs.get(path, [])

    def take_signals(self) -> None:
        self.calls.append(("take_signals",))

    def spawn(self, argv: Sequence[str], env: dict[str, str]) -> int:
        self.next_pid += 1
        self.calls.append(("spawn", self.next_pid, tuple(argv)))
        self.spawned_env = dict(env)
        return self.next_pid

    def wait_signal(self, timeout: float) -> int | None:
        if self.signals:
            return self.signals.pop(0)
        self.now += timeout
        return None

    def reap(self) -> list[tuple[int, int]]:
        return self.exits.pop(0) if self.exits else []

    def has_children(self) -> bool:
        return self.children_after_term

    def kill(self, pid: int, sig: int) -> None:
        self.calls.append(("kill", pid, sig))

    def kill_all(self, sig: int) -> None:
        self.calls.append(("kill_all", sig))

    def reboot(self, command: str) -> None:
        self.calls.append(("reboot", command))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [call for call in self.calls if call[0] == name]


def test_cmdline_splits_on_spaces_and_keeps_quoted_values_whole() -> None:
    assert split_cmdline('console=ttyS0  roost.x="a b"  quiet\n') == ["console=ttyS0", "roost.x=a b", "quiet"]
    assert split_cmdline("") == []


def test_agent_addresses_default_the_vsock_port_and_the_serial_port_name() -> None:
    assert agent_address("vsock") == "vsock:1024"
    assert agent_address("vsock:5000") == "vsock:5000"
    assert agent_address("serial") == "serial:roost.agent"
    assert agent_address("serial:/dev/vport0p1") == "serial:/dev/vport0p1"
    assert agent_address("vsock:nope") is None
    assert agent_address("tcp:80") is None


def test_config_defaults_to_vsock_and_reboot_and_the_last_setting_wins() -> None:
    assert config_from_cmdline("console=ttyS0 reboot=k") == InitConfig()
    config = config_from_cmdline("roost.agent=vsock:1024 quiet roost.agent=serial roost.halt=poweroff")
    assert config == InitConfig(agent="serial:roost.agent", halt="poweroff")


def test_bad_settings_are_warned_about_and_keep_their_defaults() -> None:
    warnings: list[str] = []
    config = config_from_cmdline("roost.agent=tcp:1 roost.halt=explode", warnings)
    assert config == InitConfig()
    assert len(warnings) == 2 and "roost.agent=tcp:1" in warnings[0]


def test_serial_port_is_found_by_its_name_under_sysfs() -> None:
    system = FakeSystem(
        dirs={"/sys/class/virtio-ports": ["vport0p0", "vport1p1"]},
        files={
            "/sys/class/virtio-ports/vport0p0/name": "org.qemu.guest_agent.0\n",
            "/sys/class/virtio-ports/vport1p1/name": "roost.agent\n",
        },
    )
    assert find_serial_port(system, "roost.agent") == "/dev/vport1p1"
    assert find_serial_port(system, "missing") is None


def test_a_workspace_machine_is_named_by_its_id_and_has_a_machine_id_from_its_key() -> None:
    key = bytes(range(32))
    system = FakeSystem(mounted={"/dev"}, cmdline=f"console=ttyS0 roost.workspace=ws-0123456789 roost.key={key.hex()}")
    Init(system).boot()
    assert ("hostname", "ws-0123456789") in system.calls
    expected = AgentIdentity("ws-0123456789", key).machine_id
    assert ("machine-id", expected) in system.calls
    assert len(expected) == 32 and expected != AgentIdentity("ws-9876543210", key).machine_id


def test_boot_mounts_what_is_missing_and_prepares_the_machine() -> None:
    system = FakeSystem(mounted={"/dev"})
    Init(system).boot()
    mounted = [call[2] for call in system.named("mount")]
    assert mounted == [target for target, *_ in MOUNTS if target != "/dev"]
    assert ("hostname", "roost") in system.calls
    assert ("lo",) in system.calls
    assert ("mkdir", WORKSPACE, 0o755) in system.calls
    assert ("mkdir", STATE_DIR, 0o700) in system.calls
    assert ("symlink", "/proc/self/fd", "/dev/fd") in system.calls
    assert system.calls[0] == ("take_signals",)


def test_agent_exiting_cleanly_halts_the_machine_in_order() -> None:
    system = FakeSystem(signals=[signal.SIGCHLD], exits=[[(101, AGENT_OK)]])
    Init(system, python=("/usr/bin/python3",)).run()
    spawn = system.named("spawn")
    assert len(spawn) == 1
    argv = spawn[0][2]
    assert isinstance(argv, tuple) and argv[0] == "/usr/bin/python3"
    assert argv[argv.index("--listen") + 1] == "vsock:1024"
    assert "starting the agent on vsock:1024 (pid 101)" in system.said
    assert "shutting down: the agent stopped" in system.said
    tail = [call[0] for call in system.calls[system.calls.index(("kill_all", signal.SIGTERM)) :]]
    assert tail == ["kill_all", "sync", "umount", "umount", "umount", "umount", "remount_ro", "sync", "reboot"]
    assert system.calls[-1] == ("reboot", "reboot")


def test_the_agent_starts_with_the_python_prefix_init_was_given() -> None:
    bundle = (
        "/opt/roost/python/lib/ld-linux-x86-64.so.2",
        "--library-path",
        "/opt/roost/python/lib",
        "/opt/roost/python/bin/python3",
    )
    system = FakeSystem(signals=[signal.SIGCHLD], exits=[[(101, AGENT_OK)]])
    Init(system, python=bundle).run()
    ((_, _pid, argv),) = system.named("spawn")
    assert isinstance(argv, tuple) and argv[:6] == (*bundle, "-I", "-c")
    assert argv[argv.index("--listen") + 1] == "vsock:1024"


def test_a_stop_signal_stops_the_agent_then_everything_and_powers_off_when_asked() -> None:
    system = FakeSystem(
        cmdline="roost.halt=poweroff", signals=[signal.SIGPWR, signal.SIGCHLD], exits=[[], [(101, AGENT_OK)]]
    )
    Init(system).run()
    assert "shutting down: received SIGPWR" in system.said
    assert system.named("kill")[0] == ("kill", 101, signal.SIGTERM)
    assert system.calls[-1] == ("reboot", "poweroff")


def test_processes_that_ignore_sigterm_are_killed() -> None:
    system = FakeSystem(signals=[signal.SIGTERM], children_after_term=True)
    Init(system).run()
    assert ("kill_all", signal.SIGTERM) in system.calls
    assert ("kill_all", signal.SIGKILL) in system.calls
    assert system.calls[-1] == ("reboot", "reboot")


def test_a_crashing_agent_is_restarted_a_few_times_then_the_machine_stops() -> None:
    crashes = [[(101 + n, AGENT_CRASHED)] for n in range(MAX_RESTARTS + 1)]
    system = FakeSystem(signals=[signal.SIGCHLD] * len(crashes), exits=crashes)
    Init(system).run()
    assert len(system.named("spawn")) == MAX_RESTARTS + 1
    assert any(message.startswith("shutting down: the agent keeps failing (exit 1)") for message in system.said)


def test_the_serial_port_is_opened_by_init_and_handed_to_the_agent() -> None:
    system = FakeSystem(
        cmdline="roost.agent=vsock:1024 roost.agent=serial",
        dirs={"/sys/class/virtio-ports": ["vport1p1"]},
        files={"/sys/class/virtio-ports/vport1p1/name": "roost.agent"},
        signals=[signal.SIGTERM],
    )
    Init(system).run()
    assert ("open_port", "/dev/vport1p1") in system.calls
    argv = system.named("spawn")[0][2]
    assert isinstance(argv, tuple) and argv[argv.index("--listen") + 1] == "serial:fd:7"
    assert "starting the agent on serial:/dev/vport1p1 (pid 101)" in system.said


def test_the_workspace_identity_on_the_command_line_goes_to_the_agent_and_not_to_its_argv() -> None:
    key = "ab" * 32
    system = FakeSystem(cmdline=f"roost.workspace=ws-1234 roost.key={key}", signals=[signal.SIGTERM])
    Init(system).run()
    argv = system.named("spawn")[0][2]
    assert isinstance(argv, tuple) and argv[argv.index("--workspace-id") + 1] == "ws-1234"
    assert key not in " ".join(argv)
    assert system.spawned_env["ROOST_AGENT_KEY"] == key


def test_an_identity_without_a_valid_key_is_not_passed_on() -> None:
    warnings: list[str] = []
    config = config_from_cmdline("roost.workspace=ws-1234 roost.key=not-hex", warnings)
    assert (config.workspace_id, config.key_hex) == ("ws-1234", "")
    assert warnings == ["ignoring roost.key: not a hex string"]
    system = FakeSystem(cmdline="roost.workspace=ws-1234 roost.key=zz", signals=[signal.SIGTERM])
    Init(system).run()
    assert "--workspace-id" not in system.named("spawn")[0][2]


def test_a_missing_serial_port_halts_the_machine_instead_of_hanging_it() -> None:
    system = FakeSystem(cmdline="roost.agent=serial")
    Init(system).run()
    assert not system.named("spawn")
    assert any("no virtio-serial port named 'roost.agent'" in message for message in system.said)
    assert system.calls[-1] == ("reboot", "reboot")


@pytest.mark.parametrize("path", ["/dev/hvc1", "/dev/vport3p2"])
def test_a_serial_port_given_by_path_is_used_as_is(path: str) -> None:
    system = FakeSystem(cmdline=f"roost.agent=serial:{path}", signals=[signal.SIGINT])
    Init(system).run()
    assert ("open_port", path) in system.calls


def test_the_network_on_the_command_line_is_configured_before_the_agent_starts() -> None:
    system = FakeSystem(cmdline="roost.net=100.96.0.2/30,100.96.0.1,100.96.0.1", signals=[signal.SIGTERM])
    Init(system).run()
    names = [call[0] for call in system.calls]
    assert names.index("lo") < names.index("network") < names.index("spawn")
    assert system.named("network") == [("network", GuestNetwork("100.96.0.2", 30, "100.96.0.1", "100.96.0.1"))]


def test_without_a_network_on_the_command_line_the_guest_keeps_loopback_only() -> None:
    system = FakeSystem(signals=[signal.SIGTERM])
    Init(system).run()
    assert system.named("network") == []


@pytest.mark.parametrize(
    "value",
    [
        "100.96.0.2,100.96.0.1,100.96.0.1",
        "100.96.0.2/30,10.0.0.1,100.96.0.1",
        "100.96.0.2/30,100.96.0.2,1.1.1.1",
        "x/30,a,b",
        "",
    ],
)
def test_a_malformed_network_is_warned_about_and_ignored(value: str) -> None:
    warnings: list[str] = []
    assert config_from_cmdline(f"roost.net={value}", warnings).network is None
    assert parse_network(value) is None
    assert warnings == [f"ignoring roost.net={value}: use ADDRESS/PREFIX,GATEWAY,NAMESERVER"]
