"""The workspace's DNS: answers queries by the policy and forwards the admitted ones to the host's resolvers.

Under `allowlist` a name the policy does not admit gets NXDOMAIN (and a
`denied` decision), so lookups cannot carry data out through the host's
resolvers; an admitted one is forwarded, and each IPv4 address in the
answer is remembered for that name in the `AddressBook`, which is what lets
a connection to it through. Under `egress` everything is forwarded. AAAA
answers are dropped: a workspace is never routed IPv6, and clients fall
back to IPv4 at once when they get none.

What goes upstream is a query rebuilt from the one question judged (its
normalised name, type and class, the client's id and EDNS buffer size),
never the client's bytes: further questions, additional records, EDNS
options and the letter case of the name (0x20) could otherwise carry data
to the host's resolvers past the policy. The reply carries the client's
question back as it was asked.

Upstream resolvers: ROOST_NETWORK_RESOLVERS ("ip[:port],...") when set,
else the nameservers of the host's /etc/resolv.conf.

Imports: dnslib, roost.errors, roost.network.decisions, decision_log,
policy and the standard library.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

from dnslib import EDNS0, QTYPE, RCODE, DNSHeader, DNSQuestion, DNSRecord

from roost.errors import InvalidArgument
from roost.network.decision_log import DecisionLog
from roost.network.decisions import AddressBook, decide_query
from roost.network.policy import NetworkPolicy, normalize_name

__all__ = ["RESOLVERS_VARIABLE", "Resolver", "read_exactly", "upstream_resolvers"]

RESOLVERS_VARIABLE = "ROOST_NETWORK_RESOLVERS"
_UPSTREAM_TIMEOUT_SECONDS = 2.0
_MAX_MESSAGE = 65_535
_TRUNCATED = 0x02  # the TC bit, in the third byte of a DNS header

Upstream = tuple[str, int]


def upstream_resolvers(
    environ: dict[str, str] | None = None, resolv_conf: Path = Path("/etc/resolv.conf")
) -> list[Upstream]:
    """Where admitted queries go: the environment's list, else the host's nameservers."""
    configured = (os.environ if environ is None else environ).get(RESOLVERS_VARIABLE, "").strip()
    if configured:
        return [_upstream(item.strip()) for item in configured.split(",") if item.strip()]
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append((str(ipaddress.ip_address(words[1].split("%")[0])), 53))
            except ValueError:
                continue
    return found


def _upstream(item: str) -> Upstream:
    host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "53")
    return str(ipaddress.ip_address(host or item)), int(port or 53)


class Resolver:
    """Turns one DNS query (wire format) into the answer the workspace gets."""

    def __init__(
        self,
        policy: Callable[[], NetworkPolicy],
        book: AddressBook,
        log: DecisionLog,
        upstreams: Sequence[Upstream],
    ) -> None:
        self._policy = policy
        self._book = book
        self._log = log
        self._upstreams = list(upstreams)

    def answer(self, query: bytes, *, over_tcp: bool = False) -> bytes | None:
        """The reply to `query`, or None when it is not a DNS query at all (dropped)."""
        try:
            request = DNSRecord.parse(query)
        except Exception:  # dnslib raises its own and struct errors on garbage
            return None
        if not request.questions:
            return _reply(request, RCODE.FORMERR)
        question = request.questions[0]
        try:
            name = normalize_name(str(question.qname))
        except InvalidArgument:
            return _reply(request, RCODE.NXDOMAIN)
        verdict = decide_query(self._policy(), name)
        if not verdict.allowed:
            self._log.record(name=name, address="", port=53, protocol="dns", allowed=False, reason=verdict.reason)
            return _reply(request, RCODE.NXDOMAIN)
        if question.qtype == QTYPE.AAAA:
            return _reply(request, RCODE.NOERROR)
        raw = self._forward(_upstream_query(request, name), over_tcp)
        if raw is None:
            return _reply(request, RCODE.SERVFAIL)
        return self._remember(request, name, raw, verdict.reason)

    def _remember(self, request: DNSRecord, name: str, raw: bytes, reason: str) -> bytes:
        try:
            response = DNSRecord.parse(raw)
        except Exception:
            return _reply(request, RCODE.SERVFAIL)
        response.questions = list(request.questions[:1])
        response.rr = [record for record in response.rr if record.rtype != QTYPE.AAAA]
        addresses = [str(record.rdata) for record in response.rr if record.rtype == QTYPE.A]
        for record in response.rr:
            if record.rtype == QTYPE.A:
                self._book.remember(str(record.rdata), name, int(record.ttl))
        self._log.record(
            name=name, address=addresses[0] if addresses else "", port=53, protocol="dns", allowed=True, reason=reason
        )
        packed: bytes = response.pack()
        return packed

    def _forward(self, query: bytes, over_tcp: bool) -> bytes | None:
        """The first upstream's answer: over UDP, and again over TCP for a TCP client when UDP's was truncated."""
        for host, port in self._upstreams:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                answer = _ask_udp(family, (host, port), query)
                if over_tcp and len(answer) > 2 and answer[2] & _TRUNCATED:
                    answer = _ask_tcp((host, port), query)
                return answer
            except (OSError, ValueError):
                continue
        return None


def _upstream_query(request: DNSRecord, name: str) -> bytes:
    """The query forwarded for `request`: its first question only, under the name judged, nothing else."""
    question = request.questions[0]
    header = DNSHeader(id=request.header.id, rd=request.header.rd)
    upstream = DNSRecord(header, q=DNSQuestion(name, question.qtype, question.qclass))
    client_edns = next((record for record in request.ar if record.rtype == QTYPE.OPT), None)
    if client_edns is not None:
        upstream.add_ar(EDNS0(udp_len=min(max(int(client_edns.rclass), 512), 4096)))
    packed: bytes = upstream.pack()
    return packed


def _ask_udp(family: int, upstream: Upstream, query: bytes) -> bytes:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(_UPSTREAM_TIMEOUT_SECONDS)
        sock.connect(upstream)
        sock.send(query)
        while True:
            data = sock.recv(_MAX_MESSAGE)
            if data[:2] == query[:2]:  # same id: not a stray datagram
                return data


def _ask_tcp(upstream: Upstream, query: bytes) -> bytes:
    with socket.create_connection(upstream, timeout=_UPSTREAM_TIMEOUT_SECONDS) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        length = struct.unpack("!H", read_exactly(sock, 2))[0]
        return read_exactly(sock, length)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("the resolver closed the connection mid-answer")
        data += chunk
    return data


def _reply(request: DNSRecord, rcode: int) -> bytes:
    reply = request.reply()
    reply.header.rcode = rcode
    packed: bytes = reply.pack()
    return packed
