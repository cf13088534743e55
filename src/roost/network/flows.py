"""The workspace's outbound flows, decided and carried: TCP connections and UDP flows caught by TPROXY.

Each TCP connection the workspace opens arrives on the transparent
listener with its original destination as the local address. The flow is
judged by address (`decide_flow`); under `allowlist`, a flow admitted for a
resolved name is also held to the TLS SNI or HTTP Host its first bytes
name (`decide_server_name`). An admitted flow is connected from the host's
namespace and relayed; a refused one is closed. Either way one decision is
logged.

UDP datagrams arrive on the transparent UDP socket with their original
destination. The first datagram of a flow (client address, destination)
decides it; an admitted flow gets a host-side socket connected to the
destination and a socket inside the workspace bound to the destination
(from the inner helper) to send the replies from; it ends after
`UDP_IDLE_SECONDS` without traffic. Refused flows are remembered for as
long, so a chatty client writes one log line, not thousands.

Imports: roost.network.decision_log, decisions, inner, policy, relay,
sniff and the standard library.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from roost.network.decision_log import DecisionLog
from roost.network.decisions import AddressBook, Verdict, decide_flow, decide_server_name
from roost.network.inner import SocketFactory, original_destination
from roost.network.policy import NetworkPolicy
from roost.network.relay import read_first_bytes, relay
from roost.network.sniff import server_name

__all__ = ["FlowJudge", "serve_tcp", "serve_udp"]

SNIFF_WAIT_SECONDS = 0.25
CONNECT_TIMEOUT_SECONDS = 10.0
UDP_IDLE_SECONDS = 60.0
_DATAGRAM = 65_535
_ANCILLARY = 64

Endpoint = tuple[str, int]


def is_host_address(address: str) -> bool:
    """Whether `address` is one of this host's own (binding to it succeeds only then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


@dataclass
class FlowJudge:
    """What every flow is judged by: the live policy, the resolver's answers, the log."""

    policy: Callable[[], NetworkPolicy]
    book: AddressBook
    log: DecisionLog
    host_address: Callable[[str], bool] = is_host_address

    def judge(self, address: str, port: int) -> Verdict:
        return decide_flow(self.policy(), self.book, address, port, self.host_address)

    def record(self, verdict: Verdict, address: str, port: int, protocol: str) -> None:
        self.log.record(
            name=verdict.name,
            address=address,
            port=port,
            protocol=protocol,
            allowed=verdict.allowed,
            reason=verdict.reason,
        )


def serve_tcp(listener: socket.socket, judge: FlowJudge) -> None:
    """Accept the workspace's TCP connections until the listener is closed; each in its own thread."""
    while True:
        try:
            client, _peer = listener.accept()
        except OSError:
            return
        threading.Thread(target=_tcp_flow, args=(client, judge), daemon=True).start()


def _tcp_flow(client: socket.socket, judge: FlowJudge) -> None:
    address, port = client.getsockname()[:2]
    verdict = judge.judge(address, port)
    first = b""
    if verdict.allowed and verdict.reason == "allowed_name":
        try:
            first = read_first_bytes(client, SNIFF_WAIT_SECONDS)
        except OSError:
            client.close()
            return
        named = server_name(first)
        if named is not None:
            verdict = decide_server_name(judge.policy(), verdict, judge.book.names_for(address), named.name, port)
    judge.record(verdict, address, port, "tcp")
    if not verdict.allowed:
        client.close()
        return
    try:
        upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS)
    except OSError:
        client.close()
        return
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    relay(client, upstream, first)


@dataclass
class _UdpFlow:
    upstream: socket.socket
    last_seen: float = field(default_factory=time.monotonic)


def serve_udp(sock: socket.socket, judge: FlowJudge, factory: SocketFactory) -> None:
    """Carry the workspace's UDP datagrams until the socket is closed."""
    flows: dict[tuple[Endpoint, Endpoint], _UdpFlow] = {}
    refused: dict[tuple[Endpoint, Endpoint], float] = {}
    lock = threading.Lock()
    while True:
        try:
            data, ancillary, _flags, client = sock.recvmsg(_DATAGRAM, socket.CMSG_SPACE(_ANCILLARY))
        except OSError:
            return
        destination = original_destination(ancillary)
        if destination is None:
            continue
        key = (client, destination)
        with lock:
            flow = flows.get(key)
        if flow is None:
            flow = _open_udp_flow(key, judge, factory, refused)
            if flow is None:
                continue
            with lock:
                flows[key] = flow
            threading.Thread(target=_udp_replies, args=(key, flow, factory, flows, lock), daemon=True).start()
        flow.last_seen = time.monotonic()
        try:
            flow.upstream.send(data)
        except OSError:
            continue


def _open_udp_flow(
    key: tuple[Endpoint, Endpoint],
    judge: FlowJudge,
    factory: SocketFactory,
    refused: dict[tuple[Endpoint, Endpoint], float],
) -> _UdpFlow | None:
    now = time.monotonic()
    if refused.get(key, 0.0) > now:
        return None
    address, port = key[1]
    verdict = judge.judge(address, port)
    if verdict.allowed:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            upstream.connect(key[1])
        except OSError:
            upstream.close()
            verdict = Verdict(False, "unreachable", verdict.name)
    judge.record(verdict, address, port, "udp")
    if not verdict.allowed:
        for stale in [other for other, until in refused.items() if until <= now]:
            del refused[stale]
        refused[key] = now + UDP_IDLE_SECONDS
        return None
    return _UdpFlow(upstream)


def _udp_replies(
    key: tuple[Endpoint, Endpoint],
    flow: _UdpFlow,
    factory: SocketFactory,
    flows: dict[tuple[Endpoint, Endpoint], _UdpFlow],
    lock: threading.Lock,
) -> None:
    client, destination = key
    try:
        _answer, (reply,) = factory.request("udp_reply", address=destination[0], port=destination[1])
    except (OSError, ValueError):
        reply = None
    flow.upstream.settimeout(UDP_IDLE_SECONDS / 4)
    try:
        while reply is not None:
            try:
                data = flow.upstream.recv(_DATAGRAM)
            except TimeoutError:
                if time.monotonic() - flow.last_seen > UDP_IDLE_SECONDS:
                    break
                continue
            flow.last_seen = time.monotonic()
            reply.sendto(data, client)
    except OSError:
        pass
    finally:
        with lock:
            flows.pop(key, None)
        flow.upstream.close()
        if reply is not None:
            reply.close()
