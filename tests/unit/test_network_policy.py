"""Network policies: what each mode admits, how allow-list entries and published ports parse, and what is refused."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from roost.errors import InvalidArgument
from roost.network.policy import (
    MAX_ALLOW_ENTRIES,
    NetworkPolicy,
    PublishedPort,
    normalize_name,
    parse_destinations,
    parse_policy,
    parse_publish,
)
from roost.network.presets import PRESETS


def test_off_admits_nothing_and_egress_everything() -> None:
    off, egress = parse_policy("off"), parse_policy("egress")
    assert not off.admits_name("pypi.org", 443)
    assert not off.admits_address(IPv4Address("10.0.0.1"), 80)
    assert egress.admits_name("anything.example", 1234)
    assert egress.admits_address(IPv4Address("10.0.0.1"), 80)


def test_an_exact_name_admits_that_name_only() -> None:
    policy = parse_policy("allowlist", ["pypi.org"])
    assert policy.admits_name("pypi.org", 443)
    assert policy.admits_name("pypi.org", 80)
    assert not policy.admits_name("files.pypi.org", 443)
    assert not policy.admits_name("evilpypi.org", 443)


def test_a_wildcard_admits_names_below_its_suffix_but_not_the_suffix_itself() -> None:
    policy = parse_policy("allowlist", ["*.example.com"])
    assert policy.admits_name("a.example.com")
    assert policy.admits_name("a.b.example.com")
    assert not policy.admits_name("example.com")
    assert not policy.admits_name("badexample.com")


def test_a_port_limits_the_entry_to_that_port() -> None:
    policy = parse_policy("allowlist", ["git.example:22", "10.1.0.0/16:5432"])
    assert policy.admits_name("git.example", 22)
    assert not policy.admits_name("git.example", 443)
    assert policy.admits_name("git.example")  # on some port
    assert policy.admits_address(IPv4Address("10.1.200.3"), 5432)
    assert not policy.admits_address(IPv4Address("10.1.200.3"), 5433)
    assert not policy.admits_address(IPv4Address("10.2.0.1"), 5432)


def test_a_cidr_never_admits_a_name_and_a_name_never_admits_an_address() -> None:
    policy = parse_policy("allowlist", ["10.0.0.0/8", "pypi.org"])
    assert not policy.admits_name("10.0.0.1")
    assert not policy.admits_address(IPv4Address("151.101.0.223"), 443)


def test_a_bare_address_is_a_single_host_network() -> None:
    (entry,) = parse_destinations("192.0.2.7:443")
    assert entry.text == "192.0.2.7/32:443"
    assert entry.matches_address(IPv4Address("192.0.2.7"), 443)
    assert not entry.matches_address(IPv4Address("192.0.2.8"), 443)


def test_names_compare_case_insensitively_without_the_final_dot_and_in_idna_form() -> None:
    policy = parse_policy("allowlist", ["PyPI.org.", "bücher.example"])
    assert policy.admits_name(normalize_name("pypi.ORG."))
    assert policy.admits_name("xn--bcher-kva.example")


def test_presets_expand_to_their_documented_hosts() -> None:
    policy = parse_policy("allowlist", ["@pypi", "@github"])
    assert [entry.text for entry in policy.allow[:2]] == list(PRESETS["pypi"])
    assert policy.admits_name("files.pythonhosted.org", 443)
    assert policy.admits_name("github.com", 22)
    assert policy.admits_name("objects.githubusercontent.com", 443)
    assert not policy.admits_name("pypi.org", 80)


def test_duplicates_are_dropped_and_order_kept() -> None:
    policy = parse_policy("allowlist", ["b.example", "a.example", "B.example", "@pypi", "pypi.org:443"])
    assert [entry.text for entry in policy.allow] == [
        "b.example",
        "a.example",
        "pypi.org:443",
        "files.pythonhosted.org:443",
    ]


def test_a_long_list_matches_without_scanning_it() -> None:
    policy = parse_policy("allowlist", [f"host{n}.example" for n in range(5000)] + ["*.deep.example"])
    assert policy.admits_name("host4999.example")
    assert policy.admits_name("x.y.z.deep.example")
    assert not policy.admits_name("host5000.example")


def test_policies_round_trip_through_json() -> None:
    policy = parse_policy("allowlist", ["@npm", "*.corp.example:8443", "10.0.0.0/8"])
    assert NetworkPolicy.from_json(policy.to_json()) == policy
    assert parse_policy("egress+ports") == NetworkPolicy("egress")


@pytest.mark.parametrize(
    ("mode", "allow", "says"),
    [
        ("everything", [], "unknown network policy"),
        ("egress", ["pypi.org"], "apply only to the allowlist"),
        ("allowlist", ["@pip"], "unknown preset"),
        ("allowlist", ["exa mple.com"], "not a host name"),
        ("allowlist", ["-bad.example"], "not a host name"),
        ("allowlist", ["a." * 130 + "com"], "not a host name"),
        ("allowlist", ["ex*ample.com"], "wildcard"),
        ("allowlist", ["*"], "wildcard"),
        ("allowlist", ["10.0.0.1/8"], "not an IPv4 address or CIDR"),
        ("allowlist", ["300.1.1.1"], "not an IPv4 address or CIDR"),
        ("allowlist", ["pypi.org:0"], "not a port number"),
        ("allowlist", ["pypi.org:65536"], "not a port number"),
        ("allowlist", ["pypi.org:https"], "not a port number"),
        ("allowlist", [":443"], "names no destination"),
    ],
)
def test_bad_policies_are_invalid_arguments_with_a_hint(mode: str, allow: list[str], says: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(mode, allow)
    assert says in caught.value.message
    assert caught.value.hint


def test_an_allow_list_over_the_bound_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="at most"):
        parse_policy("allowlist", [f"h{n}.example" for n in range(MAX_ALLOW_ENTRIES + 1)])


def test_a_single_string_is_one_entry_not_its_characters() -> None:
    assert parse_policy("allowlist", "pypi.org").allow == parse_destinations("pypi.org")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("8000", PublishedPort(8000)),
        ("18000:8000", PublishedPort(8000, 18000)),
        ("0:8000", PublishedPort(8000, 0)),
        ("127.0.0.2:18000:8000", PublishedPort(8000, 18000, "127.0.0.2")),
    ],
)
def test_published_ports_parse(text: str, port: PublishedPort) -> None:
    assert parse_publish(text) == port
    assert parse_publish(port.text) == port
    assert PublishedPort.from_json(port.to_json()) == port


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0.0.0.0:8000:80", "only loopback"),
        ("192.168.1.5:8000:80", "only loopback"),
        ("localhost:8000:80", "only loopback"),
        ("8000:0", "guest port"),
        ("70000:80", "host port"),
        ("web", "guest port"),
        ("1:2:3:4", "not a port to publish"),
    ],
)
def test_bad_published_ports_are_invalid_arguments(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_publish(text)
    assert says in caught.value.message


@pytest.mark.parametrize("entry", ["::1", "2001:db8::/32", "[::1]:443"])
def test_an_ipv6_entry_is_refused_saying_workspaces_have_no_ipv6(entry: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_destinations(entry)
    assert "IPv6" in refused.value.message and refused.value.hint
