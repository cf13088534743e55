"""Attaching a workspace to its network gateway: start it, change it live, stop it, read its log.

The calls the workspace layer makes, whatever the backend:

- `network_available()`: whether this host can enforce policies at all;
- `ensure_ports_free(ports)`: PortInUse before anything starts;
- `attach(net_dir, namespace_pid, policy, ports)`: start the gateway for
  the namespaces of `namespace_pid` (a process inside the workspace), once
  it serves; the `NetworkBoot` to keep in the workspace's record;
- `update(...)`: a new policy and ports, live; `detach(...)`: stop it;
- `read_decisions(...)`: the decision log.

NET_DIR (the workspace's network state, outside /workspace) is made 0700;
it holds gateway.json, control.sock, the decision log and gateway.log.

Imports: roost.errors, roost.network.control, decision_log, gateway,
inner, policy, published and the standard library.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.errors import NetworkError, PortInUse, RoostError
from roost.network.control import ask
from roost.network.decision_log import Decision, read_decisions
from roost.network.gateway import CONFIG_NAME, process_start_time
from roost.network.inner import RESOLVER_ADDRESS
from roost.network.policy import NetworkPolicy, PublishedPort
from roost.network.published import BoundPort, bind_published

__all__ = [
    "RESOLVER_ADDRESS",
    "BoundPort",
    "Decision",
    "NetworkBoot",
    "attach",
    "detach",
    "ensure_ports_free",
    "network_available",
    "read_decisions",
    "update",
]

_READY_SECONDS = 15.0
_STOP_SECONDS = 2.0
_TOOL_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"

# What the inner helper installs, in small: a TPROXY rule in a namespace that roost's user owns.
_PROBE_RULES = """table ip probe {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        meta l4proto tcp tproxy to 127.0.0.1:1 accept
    }
}
"""

PortRequest = tuple[PublishedPort, str | None]


@dataclass(frozen=True)
class NetworkBoot:
    """A running gateway as the workspace record keeps it.

    `started_at` is the gateway process's start time (clock ticks since boot),
    so a pid reused by another process is never taken for the gateway.
    """

    gateway_pid: int
    started_at: str
    policy: NetworkPolicy
    ports: tuple[BoundPort, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway_pid": self.gateway_pid,
            "started_at": self.started_at,
            "policy": self.policy.to_json(),
            "ports": [port.to_json() for port in self.ports],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkBoot:
        return cls(
            gateway_pid=int(data["gateway_pid"]),
            started_at=str(data["started_at"]),
            policy=NetworkPolicy.from_json(data["policy"]),
            ports=tuple(BoundPort.from_json(port) for port in data.get("ports", ())),
        )

    def is_running(self) -> bool:
        """Whether the gateway process is still this one."""
        return process_start_time(self.gateway_pid) == self.started_at


def network_available() -> tuple[bool, str]:
    """Whether policies can be enforced here (nft and ip, TPROXY, joining namespaces), and why not."""
    for tool in ("nft", "ip"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":" + _TOOL_PATH) is None:
            return False, f"{tool} is not installed (Debian: nftables, iproute2)"
    if not Path("/proc/self/ns/user").exists():
        return False, "this kernel has no user namespaces"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "nft", "-f", "-"],
        input=_PROBE_RULES,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": os.environ.get("PATH", "") + ":" + _TOOL_PATH},
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
        return False, f"nftables TPROXY in an unprivileged network namespace does not work here: {reason}"
    return True, "nftables with TPROXY in user-owned network namespaces"


def ensure_ports_free(ports: Sequence[PublishedPort]) -> None:
    """Raises: PortInUse: one of the host ports is taken (checked by binding it, then let go)."""
    for port in ports:
        if port.host_port:
            bind_published(port).close()


def attach(net_dir: Path, namespace_pid: int, policy: NetworkPolicy, ports: Sequence[PortRequest]) -> NetworkBoot:
    """Start the gateway for the workspace whose process is `namespace_pid`; returns once it serves.

    Raises:
        PortInUse: a host port is taken.
        NetworkError: the gateway could not start (the reason says why).
    """
    net_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(net_dir, 0o700)
    config = {"namespace_pid": namespace_pid, "policy": policy.to_json(), "ports": _ports_json(ports)}
    (net_dir / CONFIG_NAME).write_text(json.dumps(config))
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    with (net_dir / "gateway.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "roost.network.gateway", str(net_dir), str(write_end)],
            pass_fds=[write_end],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    os.close(write_end)
    try:
        answer = _read_ready(read_end, process)
    finally:
        os.close(read_end)
    if not answer.get("ok"):
        process.wait()
        kind: type[RoostError] = PortInUse if answer.get("code") == "port_in_use" else NetworkError
        raise kind(str(answer.get("message", "the network gateway did not start")), hint=answer.get("hint") or None)
    started = process_start_time(process.pid) or ""
    return NetworkBoot(process.pid, started, policy, tuple(BoundPort.from_json(port) for port in answer["ports"]))


def update(net_dir: Path, boot: NetworkBoot, policy: NetworkPolicy, ports: Sequence[PortRequest]) -> NetworkBoot:
    """Change a running gateway's policy and ports, live (connections on kept ports stay).

    Raises:
        PortInUse: a new host port is taken; nothing changed.
        NetworkError: the gateway is not running.
    """
    answer = ask(net_dir, {"op": "set", "policy": policy.to_json(), "ports": _ports_json(ports)})
    bound = tuple(BoundPort.from_json(port) for port in answer["ports"])
    config = {"namespace_pid": _configured_pid(net_dir), "policy": policy.to_json(), "ports": _ports_json(ports)}
    (net_dir / CONFIG_NAME).write_text(json.dumps(config))
    return NetworkBoot(boot.gateway_pid, boot.started_at, policy, bound)


def detach(net_dir: Path, boot: NetworkBoot | None) -> None:
    """Stop the gateway (its ports are freed when it exits); nothing to do when none runs. Idempotent."""
    if boot is None or not boot.is_running():
        return
    try:
        ask(net_dir, {"op": "stop"}, timeout=_STOP_SECONDS)
    except RoostError:
        pass  # not answering: it is ended below
    deadline = time.monotonic() + _STOP_SECONDS
    while boot.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)
    if boot.is_running():
        try:
            os.kill(boot.gateway_pid, signal.SIGKILL)
        except ProcessLookupError:
            return
    _reap(boot.gateway_pid)


def _reap(pid: int) -> None:
    # Our own child when attach ran in this process: collect it so no zombie is left.
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _read_ready(fd: int, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if not poller.poll(_READY_SECONDS * 1000):
        process.kill()
        process.wait()
        raise NetworkError(f"the network gateway did not start within {_READY_SECONDS:.0f} s")
    data = os.read(fd, 1 << 20)
    try:
        answer: dict[str, Any] = json.loads(data)
    except ValueError:
        answer = {"ok": False, "message": f"the network gateway failed to start (exit {process.wait()})"}
    return answer


def _ports_json(ports: Sequence[PortRequest]) -> list[dict[str, Any]]:
    return [{"port": port.to_json(), "service": service} for port, service in ports]


def _configured_pid(net_dir: Path) -> int:
    return int(json.loads((net_dir / CONFIG_NAME).read_text())["namespace_pid"])
