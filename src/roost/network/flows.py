"""The workspace's outbound flows, decided and carried: TCP connections and UDP flows caught by TPROXY.

Each TCP connection the workspace opens arrives on the transparent
listener with its original destination as the local address. The flow is
judged by address (`decide_flow`); under `allowlist`, a flow admitted for a
resolved name is also held to the TLS SNI or HTTP Host its first bytes
name (`decide_server_name`). An admitted flow is connected from the host's
namespace and relayed; a refused one is closed. Either way one decision is
logged. While proxy secrets are set, every admitted flow's first bytes are
read, and one the `Interceptor` wants (HTTP, or TLS to a secret's host) is
carried by it instead of spliced.

UDP datagrams arrive on the transparent UDP socket with their original
destination. The first datagram of a flow (client address, destination)
decides it; an admitted flow gets a host-side socket connected to the
destination and a socket inside the workspace bound to the destination
(from the inner helper) to send the replies from; it ends after
`UDP_IDLE_SECONDS` without traffic, or at its next datagram once a new
policy no longer admits it. (TCP connections open when the policy changes
are left to finish; new ones are judged by the new policy.) Refused flows are remembered for as
long, so a chatty client writes one log line, not thousands.

One workspace holds at most MAX_TCP_CONNECTIONS connections and
MAX_UDP_FLOWS flows open at once; past that, new ones are refused and
logged (`too_many_connections`, `too_many_flows`).

Imports: roost.network.accepting, decision_log, decisions, inner, intercept, policy, relay,
sniff and the standard library.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from roost.network.accepting import accept_each
from roost.network.decision_log import DecisionLog
from roost.network.decisions import AddressBook, Verdict, decide_flow, decide_server_name
from roost.network.inner import SocketFactory, original_destination
from roost.network.intercept import Interceptor
from roost.network.policy import NetworkPolicy
from roost.network.relay import read_first_bytes, relay
from roost.network.sniff import Named, server_name, unfinished

__all__ = ["FlowJudge", "open_udp_flow", "serve_tcp", "serve_udp", "tcp_flow_in_slot"]

SNIFF_WAIT_SECONDS = 0.25
CONNECT_TIMEOUT_SECONDS = 10.0
UDP_IDLE_SECONDS = 60.0
# Bounds what one workspace can make its gateway hold (threads, sockets); far above real use.
MAX_TCP_CONNECTIONS = 2048
MAX_UDP_FLOWS = 1024
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
    interceptor: Interceptor | None = None

    def intercepting(self) -> bool:
        return self.interceptor is not None and self.interceptor.active()

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


def serve_tcp(listener: socket.socket, judge: FlowJudge, max_connections: int = MAX_TCP_CONNECTIONS) -> None:
    """Accept the workspace's TCP connections until the listener is closed; each in its own thread."""
    accept_each(listener, partial(tcp_flow_in_slot, judge=judge, slots=threading.BoundedSemaphore(max_connections)))


def tcp_flow_in_slot(client: socket.socket, *, judge: FlowJudge, slots: threading.BoundedSemaphore) -> None:
    """Carry one connection if a slot is free; else refuse it (`too_many_connections`)."""
    if not slots.acquire(blocking=False):
        address, port = client.getsockname()[:2]
        judge.record(Verdict(False, "too_many_connections"), address, port, "tcp")
        _refuse(client)
        return
    try:
        _tcp_flow(client, judge=judge)
    finally:
        slots.release()


def _tcp_flow(client: socket.socket, *, judge: FlowJudge) -> None:
    address, port = client.getsockname()[:2]
    verdict = judge.judge(address, port)
    first = b""
    if verdict.allowed and (verdict.reason == "allowed_name" or judge.intercepting()):
        try:
            first = read_first_bytes(client, SNIFF_WAIT_SECONDS)
        except OSError:
            client.close()
            return
        named = Named(None) if unfinished(first) else server_name(first)
        if named is not None:
            verdict = decide_server_name(judge.policy(), verdict, judge.book.names_for(address), named.name, port)
    judge.record(verdict, address, port, "tcp")
    if not verdict.allowed:
        _refuse(client)
        return
    if judge.interceptor is not None and judge.interceptor.wants(first):
        judge.interceptor.carry(client, address, port, first)
        return
    try:
        upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS)
    except OSError:
        _refuse(client)  # the workspace sees what it would have seen connecting itself
        return
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    relay(client, upstream, first)


def _refuse(client: socket.socket) -> None:
    # A reset, not an orderly close: the client sees its connection refused, not an empty answer.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


@dataclass
class _UdpFlow:
    upstream: socket.socket
    policy: NetworkPolicy  # the one it was admitted under: judged again once another is set
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False


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
        if flow is not None and flow.policy is not judge.policy() and not _still_admitted(key, flow, judge):
            with lock:
                flows.pop(key, None)
            flow = None
        if flow is None:
            flow = open_udp_flow(key, judge, refused, len(flows))
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


def _still_admitted(key: tuple[Endpoint, Endpoint], flow: _UdpFlow, judge: FlowJudge) -> bool:
    policy = judge.policy()
    verdict = judge.judge(*key[1])
    if verdict.allowed:
        flow.policy = policy
        return True
    flow.closed = True  # its reply thread ends; the next datagram is judged as a new flow
    return False


def open_udp_flow(
    key: tuple[Endpoint, Endpoint],
    judge: FlowJudge,
    refused: dict[tuple[Endpoint, Endpoint], float],
    open_flows: int,
) -> _UdpFlow | None:
    """The flow `key` (client, destination) opens, or None when it is refused (logged once a while)."""
    now = time.monotonic()
    if refused.get(key, 0.0) > now:
        return None
    address, port = key[1]
    verdict = judge.judge(address, port)
    if verdict.allowed and open_flows >= MAX_UDP_FLOWS:
        verdict = Verdict(False, "too_many_flows", verdict.name)
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
        if len(refused) < 4 * MAX_UDP_FLOWS:
            refused[key] = now + UDP_IDLE_SECONDS
        return None
    return _UdpFlow(upstream, judge.policy())


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
        while reply is not None and not flow.closed:
            try:
                data = flow.upstream.recv(_DATAGRAM)
            except TimeoutError:
                if time.monotonic() - flow.last_seen > UDP_IDLE_SECONDS:
                    break
                continue
            flow.last_seen = time.monotonic()
            if not flow.closed:
                reply.sendto(data, client)
    except OSError:
        pass
    finally:
        with lock:
            flows.pop(key, None)
        flow.upstream.close()
        if reply is not None:
            reply.close()
