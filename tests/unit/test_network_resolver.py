"""The workspace's resolver against a fake upstream on loopback: what it forwards, answers, remembers and logs."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import AAAA, EDNS0, QTYPE, RCODE, RR, TXT, A, DNSQuestion, DNSRecord

from roost.network.decision_log import DecisionLog, read_decisions
from roost.network.decisions import AddressBook
from roost.network.policy import NetworkPolicy, parse_policy
from roost.network.resolver import Resolver, read_exactly, upstream_resolvers


class FakeUpstream:
    """Answers A with 192.0.2.10 and AAAA with 2001:db8::1 over UDP and TCP; `truncate` sets TC on UDP."""

    def __init__(self, truncate: bool = False) -> None:
        self.truncate = truncate
        self.asked: list[tuple[str, str]] = []
        self.received: list[DNSRecord] = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_tcp, daemon=True).start()

    def _answer(self, data: bytes, transport: str) -> bytes:
        request = DNSRecord.parse(data)
        self.received.append(request)
        self.asked.append((str(request.q.qname).rstrip("."), transport))
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.10"), ttl=60))
        reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA("2001:db8::1"), ttl=60))
        if transport == "udp" and self.truncate:
            reply.header.tc = 1
            reply.rr = []
        packed: bytes = reply.pack()
        return packed

    def _serve_udp(self) -> None:
        while True:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            self.udp.sendto(self._answer(data, "udp"), peer)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _peer = self.tcp.accept()
            except OSError:
                return
            with conn:
                query = read_exactly(conn, int.from_bytes(read_exactly(conn, 2), "big"))
                answer = self._answer(query, "tcp")
                conn.sendall(len(answer).to_bytes(2, "big") + answer)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    yield fake
    fake.close()


def resolver_for(policy: NetworkPolicy, upstream: FakeUpstream, tmp_path: Path) -> tuple[Resolver, AddressBook]:
    book = AddressBook()
    return Resolver(lambda: policy, book, DecisionLog(tmp_path), [("127.0.0.1", upstream.port)]), book


def query(name: str, kind: str = "A") -> bytes:
    packed: bytes = DNSRecord.question(name, kind).pack()
    return packed


def test_a_denied_name_is_nxdomain_logged_and_never_asked_upstream(upstream: FakeUpstream, tmp_path: Path) -> None:
    resolver, _book = resolver_for(parse_policy("allowlist", ["pypi.org"]), upstream, tmp_path)
    reply = DNSRecord.parse(resolver.answer(query("secret-data.evil.test")))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert upstream.asked == []
    (decision,) = read_decisions(tmp_path)
    assert (decision.name, decision.protocol, decision.verdict, decision.reason) == (
        "secret-data.evil.test",
        "dns",
        "denied",
        "name_not_allowed",
    )


def test_an_allowed_name_is_forwarded_and_its_ipv4_answers_remembered_without_ipv6(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    resolver, book = resolver_for(parse_policy("allowlist", ["pypi.org"]), upstream, tmp_path)
    reply = DNSRecord.parse(resolver.answer(query("PyPI.org")))
    assert [(record.rtype, str(record.rdata)) for record in reply.rr] == [(QTYPE.A, "192.0.2.10")]
    assert book.names_for("192.0.2.10") == ("pypi.org",)
    assert DNSRecord.parse(resolver.answer(query("pypi.org", "AAAA"))).rr == []
    assert [d.address for d in read_decisions(tmp_path)] == ["192.0.2.10"]


def test_only_the_judged_question_goes_upstream_not_what_else_the_query_carries(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    resolver, _book = resolver_for(parse_policy("allowlist", ["pypi.org"]), upstream, tmp_path)
    smuggling = DNSRecord.question("PyPI.ORG", "A")  # 0x20 letter case could carry bits too
    smuggling.add_question(DNSQuestion("secret-data.evil.test", QTYPE.A))
    smuggling.add_ar(RR("more-secret.evil.test", QTYPE.TXT, rdata=TXT("payload")))
    smuggling.add_ar(EDNS0(udp_len=1232, opts=[]))
    reply = DNSRecord.parse(resolver.answer(smuggling.pack()))
    (forwarded,) = upstream.received
    assert [(str(q.qname), q.qtype) for q in forwarded.questions] == [("pypi.org.", QTYPE.A)]
    assert [(record.rtype, record.rclass) for record in forwarded.ar] == [(QTYPE.OPT, 1232)]
    assert (reply.header.id, str(reply.q.qname)) == (smuggling.header.id, "PyPI.ORG.")
    assert [str(record.rdata) for record in reply.rr] == ["192.0.2.10"]


def test_a_tcp_client_gets_the_full_answer_when_udp_was_truncated(tmp_path: Path) -> None:
    fake = FakeUpstream(truncate=True)
    try:
        resolver, _book = resolver_for(parse_policy("egress"), fake, tmp_path)
        assert DNSRecord.parse(resolver.answer(query("big.test"))).header.tc == 1
        reply = DNSRecord.parse(resolver.answer(query("big.test"), over_tcp=True))
        assert [str(record.rdata) for record in reply.rr] == ["192.0.2.10"]
        assert fake.asked == [("big.test", "udp"), ("big.test", "udp"), ("big.test", "tcp")]
    finally:
        fake.close()


def test_no_upstream_answering_is_servfail_and_garbage_is_dropped(tmp_path: Path) -> None:
    # Nothing listens on 127.0.0.2:9, so the upstream refuses at once.
    resolver = Resolver(lambda: parse_policy("egress"), AddressBook(), DecisionLog(tmp_path), [("127.0.0.2", 9)])
    assert DNSRecord.parse(resolver.answer(query("a.test"))).header.rcode == RCODE.SERVFAIL
    assert resolver.answer(b"\x00\x01garbage") is None


def test_upstreams_come_from_the_environment_else_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nsearch example\n")
    assert upstream_resolvers({}, conf) == [("10.0.0.53", 53), ("fe80::1", 53)]
    environ = {"ROOST_NETWORK_RESOLVERS": "127.0.0.1:5353, 192.0.2.1"}
    assert upstream_resolvers(environ, conf) == [("127.0.0.1", 5353), ("192.0.2.1", 53)]
    assert upstream_resolvers({}, tmp_path / "missing") == []
