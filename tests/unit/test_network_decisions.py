"""The gateway's verdicts without sockets: DNS names, flows by address, and the server name a client asks for."""

from __future__ import annotations

import ssl

import pytest

from roost.network.decisions import (
    MIN_REMEMBER_SECONDS,
    AddressBook,
    Verdict,
    decide_flow,
    decide_query,
    decide_server_name,
    is_special_address,
)
from roost.network.policy import parse_policy
from roost.network.sniff import Named, is_complete, server_name


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def never_host(address: str) -> bool:
    return False


def client_hello(name: str | None) -> bytes:
    """The first bytes a real TLS client sends, made by Python's ssl module."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name) if name else None
    if tls is None:
        context.check_hostname = False
        tls = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_allowlist_resolves_only_admitted_names_and_egress_everything() -> None:
    allowlist = parse_policy("allowlist", ["pypi.org", "*.example.com"])
    assert decide_query(allowlist, "pypi.org") == Verdict(True, "allowed_name", "pypi.org")
    assert decide_query(allowlist, "a.example.com").allowed
    assert decide_query(allowlist, "evil.test") == Verdict(False, "name_not_allowed", "evil.test")
    assert decide_query(parse_policy("egress"), "evil.test").allowed


def test_an_address_is_admitted_only_once_resolved_for_an_allowed_name_on_its_port() -> None:
    policy = parse_policy("allowlist", ["pypi.org:443"])
    book = AddressBook()
    assert decide_flow(policy, book, "10.1.1.1", 443, never_host) == Verdict(False, "address_not_resolved")
    book.remember("10.1.1.1", "pypi.org", 60)
    assert decide_flow(policy, book, "10.1.1.1", 443, never_host) == Verdict(True, "allowed_name", "pypi.org")
    assert decide_flow(policy, book, "10.1.1.1", 80, never_host) == Verdict(False, "port_not_allowed", "pypi.org")


def test_an_address_resolved_for_a_name_no_longer_allowed_is_refused() -> None:
    book = AddressBook()
    book.remember("10.1.1.1", "pypi.org", 60)
    narrowed = parse_policy("allowlist", ["npmjs.org"])
    assert decide_flow(narrowed, book, "10.1.1.1", 443, never_host) == Verdict(False, "name_not_allowed", "pypi.org")


def test_an_allowed_cidr_admits_without_resolution() -> None:
    policy = parse_policy("allowlist", ["10.2.0.0/16:22"])
    assert decide_flow(policy, AddressBook(), "10.2.3.4", 22, never_host).reason == "allowed_cidr"
    assert not decide_flow(policy, AddressBook(), "10.2.3.4", 23, never_host).allowed


def test_remembered_answers_expire_after_their_time() -> None:
    clock = FakeClock()
    book = AddressBook(clock)
    book.remember("10.1.1.1", "pypi.org", 1)
    clock.now += MIN_REMEMBER_SECONDS - 1
    assert book.names_for("10.1.1.1") == ("pypi.org",)
    clock.now += 2
    assert book.names_for("10.1.1.1") == ()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "host_local"),
        ("127.8.9.10", "host_local"),
        ("0.0.0.0", "host_local"),
        ("169.254.169.254", "host_local"),
        ("224.0.0.251", "host_local"),
        ("255.255.255.255", "host_local"),
        ("::1", "ipv6"),
        ("2001:db8::1", "ipv6"),
    ],
)
def test_the_host_and_ipv6_are_refused_under_every_policy(address: str, reason: str) -> None:
    assert is_special_address(address) == reason
    for policy in (parse_policy("egress"), parse_policy("allowlist", ["0.0.0.0/0"])):
        assert decide_flow(policy, AddressBook(), address, 80, never_host) == Verdict(False, reason)


def test_an_address_of_the_host_is_refused_under_egress() -> None:
    verdict = decide_flow(parse_policy("egress"), AddressBook(), "192.0.2.7", 80, lambda a: a == "192.0.2.7")
    assert verdict == Verdict(False, "host_local")
    assert decide_flow(parse_policy("egress"), AddressBook(), "192.0.2.8", 80, lambda a: a == "192.0.2.7").allowed


def test_a_foreign_server_name_on_an_allowed_address_is_refused() -> None:
    policy = parse_policy("allowlist", ["pypi.org", "other.org"])
    flow = Verdict(True, "allowed_name", "pypi.org")
    assert decide_server_name(policy, flow, ["pypi.org"], "pypi.org", 443).allowed
    assert decide_server_name(policy, flow, ["pypi.org"], "other.org", 443) == Verdict(
        False, "sni_mismatch", "other.org"
    )
    assert decide_server_name(policy, flow, ["pypi.org"], None, 443) == Verdict(False, "sni_missing", "pypi.org")


def test_server_names_are_not_checked_for_cidr_or_egress_flows() -> None:
    policy = parse_policy("allowlist", ["10.0.0.0/8"])
    flow = Verdict(True, "allowed_cidr")
    assert decide_server_name(policy, flow, [], "anything.test", 443) is flow


def test_the_sni_of_a_real_client_hello_is_read() -> None:
    hello = client_hello("Allowed.Test")
    assert is_complete(hello)
    assert server_name(hello) == Named("allowed.test")
    assert not is_complete(hello[:40])
    assert server_name(client_hello(None)) == Named(None)


def test_the_host_header_of_an_http_request_is_read_without_its_port() -> None:
    request = b"GET /simple/ HTTP/1.1\r\nUser-Agent: x\r\nHost: PyPI.org:8080\r\n\r\n"
    assert is_complete(request)
    assert server_name(request) == Named("pypi.org")
    assert not is_complete(b"GET /simple/ HT")
    assert not is_complete(b"GE")
    assert server_name(b"GET / HTTP/1.0\r\n\r\n") == Named(None)


def test_other_protocols_name_nothing_and_are_judged_by_address() -> None:
    assert server_name(b"SSH-2.0-OpenSSH_9.2\r\n") is None
    assert is_complete(b"SSH-2.0-OpenSSH_9.2\r\n")
    assert server_name(b"\x00\x01binary") is None
