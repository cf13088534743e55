"""The gateway process: one per networked workspace, on the host, holding every way out of the workspace.

`python -m roost.network.gateway NET_DIR READY_FD` reads NET_DIR/gateway.json
(the workspace's namespace pid and its start time, the policy, the ports),
starts the inner helper in that namespace, and serves until told to stop or
until the workspace's process is gone:

- DNS on RESOLVER_ADDRESS:53, UDP and TCP (`Resolver`);
- the TPROXY'd TCP connections and UDP flows (`flows`);
- published ports on the host's loopback (`PortTable`);
- the control socket (`control`): live policy and port changes, proxy
  secrets (`{"op": "secrets"}`: held in this process's memory only), status, stop;
- flows carrying proxy secrets' placeholders (`intercept`), rewritten.

It writes one JSON line to READY_FD once it serves (`{"ok": true, "ports":
[...]}`) or could not start (`{"ok": false, ...error}`), then closes it.
Policy and ports are swapped whole, so a flow sees one policy or the next.

Imports: roost.errors, roost.network.accepting, authority, control, decision_log, decisions,
flows, inner, intercept, netdir, policy, published, resolver, substitution, and the standard library.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from roost.errors import NetworkError, RoostError
from roost.network.accepting import accept_each
from roost.network.authority import Authority
from roost.network.control import CONTROL_NAME, serve_control
from roost.network.decision_log import DecisionLog
from roost.network.decisions import AddressBook
from roost.network.flows import FlowJudge, serve_tcp, serve_udp
from roost.network.inner import SocketFactory
from roost.network.intercept import Interceptor
from roost.network.netdir import CONFIG_NAME, process_start_time
from roost.network.policy import NetworkPolicy, PublishedPort
from roost.network.published import PortTable
from roost.network.resolver import Resolver, read_exactly, upstream_resolvers
from roost.network.substitution import substitutions_from_wire

__all__ = ["CONFIG_NAME", "main", "process_start_time"]

_WATCH_SECONDS = 0.5
_DNS_WORKERS = 16
_DNS_TCP_IDLE_SECONDS = 10.0


def parse_ports(entries: list[dict[str, Any]]) -> list[tuple[PublishedPort, str | None]]:
    return [(PublishedPort.from_json(entry["port"]), entry.get("service")) for entry in entries]


class Gateway:
    """A running gateway's parts and its live settings."""

    def __init__(self, net_dir: Path, namespace_pid: int, policy: NetworkPolicy) -> None:
        self.net_dir = net_dir
        self.namespace_pid = namespace_pid
        self.namespace_started = process_start_time(namespace_pid)
        self.policy = policy
        self.stopping = threading.Event()
        self.book = AddressBook()
        self.log = DecisionLog(net_dir)
        self.factory, self.helper, sockets = SocketFactory.start(namespace_pid)
        self.sockets = sockets
        self.ports = PortTable(self.factory)
        self.resolver = Resolver(lambda: self.policy, self.book, self.log, upstream_resolvers())
        self.interceptor = Interceptor(lambda: Authority.load_or_create(net_dir), self.book, self.log)

    def serve(self) -> None:
        """Start every server thread (returns at once)."""
        judge = FlowJudge(lambda: self.policy, self.book, self.log, interceptor=self.interceptor)
        for name, sock in self.sockets.items():
            if name.startswith("tcp"):
                threading.Thread(target=serve_tcp, args=(sock, judge), daemon=True).start()
            elif name.startswith("udp"):
                threading.Thread(target=serve_udp, args=(sock, judge, self.factory), daemon=True).start()
        threading.Thread(target=self._dns_udp, args=(self.sockets["dns_udp"],), daemon=True).start()
        dns_tcp = self.sockets["dns_tcp"]
        threading.Thread(target=accept_each, args=(dns_tcp, self._dns_tcp_connection), daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one control request (stopping is by SIGTERM, or `stop` here)."""
        op = request.get("op")
        if op == "status":
            return self.status()
        if op == "set":
            policy = NetworkPolicy.from_json(request["policy"])
            ports = self.ports.apply(parse_ports(request.get("ports", [])))
            self.policy = policy
            return {"ports": [port.to_json() for port in ports]}
        if op == "secrets":
            self.interceptor.substitutions = substitutions_from_wire(request.get("substitutions", []))
            return {"secrets": len(self.interceptor.substitutions)}
        if op == "stop":
            self.stopping.set()
            return {}
        raise NetworkError(f"unknown control request {op!r}", hint="roost and its gateway may be different versions")

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "policy": self.policy.to_json(),
            "ports": [port.to_json() for port in self.ports.bound],
        }

    def close(self) -> None:
        self.ports.close()
        for sock in self.sockets.values():
            sock.close()
        self.factory.close()
        self.helper.kill()
        self.helper.wait()
        (self.net_dir / CONTROL_NAME).unlink(missing_ok=True)

    def _watch(self) -> None:
        # The workspace gone (or the helper, which holds its namespace): nothing left to serve.
        while not self.stopping.wait(_WATCH_SECONDS):
            if process_start_time(self.namespace_pid) != self.namespace_started or self.helper.poll() is not None:
                self.stopping.set()

    def _dns_udp(self, sock: socket.socket) -> None:
        def answer(query: bytes, client: Any) -> None:
            reply = self.resolver.answer(query)
            if reply is not None:
                try:
                    sock.sendto(reply, client)
                except OSError:
                    pass

        with ThreadPoolExecutor(_DNS_WORKERS) as pool:
            while True:
                try:
                    query, client = sock.recvfrom(65535)
                except OSError:
                    return
                pool.submit(answer, query, client)

    def _dns_tcp_connection(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(_DNS_TCP_IDLE_SECONDS)
            try:
                while True:
                    length = int.from_bytes(read_exactly(conn, 2), "big")
                    reply = self.resolver.answer(read_exactly(conn, length), over_tcp=True)
                    if reply is None:
                        return
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
            except (OSError, ValueError):
                return


def _start(net_dir: Path) -> Gateway:
    config = json.loads((net_dir / CONFIG_NAME).read_text())
    try:
        gateway = Gateway(net_dir, int(config["namespace_pid"]), NetworkPolicy.from_json(config["policy"]))
    except OSError as exc:
        raise NetworkError(
            f"cannot set up the workspace's network namespace: {exc.strerror or exc}",
            hint="check that nftables with TPROXY is available here (the doctor's network check says)",
        ) from None
    try:
        gateway.ports.apply(parse_ports(config.get("ports", [])))
    except RoostError:
        gateway.close()
        raise
    return gateway


def main(argv: list[str]) -> int:
    net_dir, ready_fd = Path(argv[0]), int(argv[1])
    with os.fdopen(ready_fd, "w") as ready:
        try:
            gateway = _start(net_dir)
            gateway.serve()
            control = serve_control(net_dir, gateway.handle)
        except RoostError as exc:
            ready.write(json.dumps({"ok": False, **exc.to_dict()}) + "\n")
            return 1
        signal.signal(signal.SIGTERM, lambda _number, _frame: gateway.stopping.set())
        ready.write(json.dumps({"ok": True, **gateway.status()}) + "\n")
    gateway.stopping.wait()
    control.close()
    gateway.close()
    # Daemon threads may sit in splice or accept: leave without waiting for them.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
