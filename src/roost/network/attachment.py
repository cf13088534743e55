"""Attaching a workspace to its network gateway: start it, change it live, stop it, read its log.

The calls the workspace layer makes, whatever the backend:

- `network_available()`: whether this host can enforce policies at all;
- `ensure_ports_free(ports)`: PortInUse before anything starts;
- `attach(net_dir, namespace_pid, policy, ports, substitutions=())`: start
  the gateway for the namespaces of `namespace_pid` (a process inside the
  workspace), once it serves; the `NetworkBoot` to keep in the workspace's record;
- `update(...)`: a new policy and ports (and proxy secrets), live; `detach(...)`: stop it;
- `read_decisions(...)`: the decision log.

NET_DIR (the workspace's network state, outside /workspace) is made 0700;
it holds gateway.json, control.sock, the decision log, gateway.log and
the workspace's CA (`authority`). Proxy secrets (`Substitution`) go to the
gateway over its control socket only: never into gateway.json, its argv or
its environment, so only its memory holds their values.

Imports: roost.errors, roost.network.control, decision_log, inner,
netdir, policy, published, substitution, roost.store.atomic and the standard library
(not the gateway's own parts: it runs them in a process of its own).
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
from roost.network.control import CONTROL_NAME, ask
from roost.network.decision_log import Decision, read_decisions
from roost.network.inner import RESOLVER_ADDRESS
from roost.network.netdir import CONFIG_NAME, GATEWAY_LOG_NAME, process_start_time
from roost.network.policy import NetworkPolicy, PublishedPort
from roost.network.published import BoundPort, bind_published
from roost.network.substitution import Substitution, substitutions_to_wire
from roost.store.atomic import write_atomic

__all__ = [
    "RESOLVER_ADDRESS",
    "BoundPort",
    "Decision",
    "NetworkBoot",
    "Substitution",
    "attach",
    "detach",
    "ensure_ports_free",
    "network_available",
    "read_decisions",
    "update",
]

_READY_SECONDS = 15.0
_STOP_SECONDS = 1.0
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


def attach(
    net_dir: Path,
    namespace_pid: int,
    policy: NetworkPolicy,
    ports: Sequence[PortRequest],
    substitutions: Sequence[Substitution] = (),
) -> NetworkBoot:
    """Start the gateway for the workspace whose process is `namespace_pid`; returns once it serves.

    The gateway lives as long as that process (checked by pid and start
    time): a workspace restarted with a new one needs `attach` again. A
    gateway still serving `net_dir` from before is stopped first.
    `substitutions` are the workspace's proxy secrets (sent once it serves).

    Raises:
        PortInUse: a host port is taken.
        NetworkError: the gateway could not start (the reason says why).
    """
    net_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(net_dir, 0o700)
    _stop_stale(net_dir)
    _write_config(net_dir, namespace_pid, policy, ports)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    with (net_dir / GATEWAY_LOG_NAME).open("ab") as log:
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
    if substitutions:
        try:
            _send_substitutions(net_dir, substitutions)
        except RoostError:
            _terminate(process.pid, started)
            raise
    return NetworkBoot(process.pid, started, policy, tuple(BoundPort.from_json(port) for port in answer["ports"]))


def update(
    net_dir: Path,
    boot: NetworkBoot,
    policy: NetworkPolicy,
    ports: Sequence[PortRequest],
    substitutions: Sequence[Substitution] | None = None,
) -> NetworkBoot:
    """Change a running gateway's policy and ports, live (connections on kept ports stay), and its
    proxy secrets when `substitutions` is given (None keeps those it holds; () removes them all).

    Raises:
        PortInUse: a new host port is taken; nothing changed.
        NetworkError: the gateway is not running.
    """
    answer = ask(net_dir, {"op": "set", "policy": policy.to_json(), "ports": _ports_json(ports)})
    bound = tuple(BoundPort.from_json(port) for port in answer["ports"])
    if substitutions is not None:
        _send_substitutions(net_dir, substitutions)
    _write_config(net_dir, _configured_pid(net_dir), policy, ports)
    return NetworkBoot(boot.gateway_pid, boot.started_at, policy, bound)


def detach(net_dir: Path, boot: NetworkBoot | None) -> None:
    """Stop the gateway (its ports are freed as it exits); nothing to do when none runs. Idempotent.

    Signals rather than asks, so a gateway that hangs costs at most
    `_STOP_SECONDS` before it is killed.
    """
    if boot is not None:
        _terminate(boot.gateway_pid, boot.started_at)


def _terminate(pid: int, started_at: str) -> None:
    if process_start_time(pid) != started_at:
        _reap(pid)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_SECONDS
    while process_start_time(pid) == started_at and time.monotonic() < deadline:
        time.sleep(0.01)
    if process_start_time(pid) == started_at:
        os.kill(pid, signal.SIGKILL)
    # Gone or a zombie by now, or killed: when it is our child, wait for its last threads to exit
    # (a zombie leader is not reapable until they have; a non-blocking wait could leave it behind).
    _reap(pid, block=True)


def _stop_stale(net_dir: Path) -> None:
    """End a gateway still serving NET_DIR (its record was lost): two in one namespace would fight."""
    if not (net_dir / CONTROL_NAME).exists():
        return
    try:
        pid = int(ask(net_dir, {"op": "status"}, timeout=1.0)["pid"])
    except (RoostError, KeyError, ValueError):
        return
    started = process_start_time(pid)
    if started is not None:
        _terminate(pid, started)


def _reap(pid: int, *, block: bool = False) -> None:
    # Our own child when attach ran in this process: collect it so no zombie is left.
    try:
        os.waitpid(pid, 0 if block else os.WNOHANG)
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


def _send_substitutions(net_dir: Path, substitutions: Sequence[Substitution]) -> None:
    ask(net_dir, {"op": "secrets", "substitutions": substitutions_to_wire(substitutions)})


def _write_config(net_dir: Path, namespace_pid: int, policy: NetworkPolicy, ports: Sequence[PortRequest]) -> None:
    config = {"namespace_pid": namespace_pid, "policy": policy.to_json(), "ports": _ports_json(ports)}
    write_atomic(net_dir / CONFIG_NAME, json.dumps(config).encode(), durable=False)


def _ports_json(ports: Sequence[PortRequest]) -> list[dict[str, Any]]:
    return [{"port": port.to_json(), "service": service} for port, service in ports]


def _configured_pid(net_dir: Path) -> int:
    return int(json.loads((net_dir / CONFIG_NAME).read_text())["namespace_pid"])
