"""Whether one flow may leave a workspace: the gateway's verdicts, as pure functions over values.

The gateway asks three questions, each answered here without a socket:

- `decide_query`: may this DNS name be resolved (and forwarded upstream)?
- `decide_flow`: may a TCP connection or UDP flow go to `address:port`?
  Under `allowlist` the address must be in an allowed CIDR, or one roost's
  resolver answered for a name the policy admits now (on this port); the
  `AddressBook` remembers those answers with their TTL.
- `decide_server_name`: once the client's first bytes are seen, does the
  TLS SNI or HTTP Host they name match a name that address was resolved for
  (and that the policy admits)? A connection to an allowed address that
  asks for another name is refused.

Destinations on the host itself are refused under every policy (loopback,
0.0.0.0/8, link-local, multicast, broadcast, and any address the caller's
`is_host_address` says is the host's), as is IPv6, which a workspace is
never routed.

Imports: roost.network.policy and the standard library.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from roost.network.policy import NetworkPolicy

__all__ = [
    "AddressBook",
    "Verdict",
    "decide_flow",
    "decide_query",
    "decide_server_name",
    "is_special_address",
]

# Ranges that are the host (or no host at all) whatever the host's interfaces are.
_SPECIAL_NETWORKS = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
)
# An answer is remembered at least this long: resolvers in the workspace (glibc, language
# runtimes) keep addresses past a short TTL, and refusing them then would break real clients.
MIN_REMEMBER_SECONDS = 300
MAX_REMEMBER_SECONDS = 24 * 3600
# Bounds the book's memory under a workspace that resolves without end.
MAX_BOOK_ADDRESSES = 65_536


@dataclass(frozen=True)
class Verdict:
    """A decision: `allowed`, why (`reason`, a stable word), and the name it was made for if any."""

    allowed: bool
    reason: str
    name: str | None = None


class AddressBook:
    """Which names roost's resolver answered with which IPv4 address, until when. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def remember(self, address: str, name: str, ttl: int) -> None:
        """`name` resolved to `address` with this TTL (clamped to the module's bounds)."""
        keep = min(max(ttl, MIN_REMEMBER_SECONDS), MAX_REMEMBER_SECONDS)
        with self._lock:
            if address not in self._entries and len(self._entries) >= MAX_BOOK_ADDRESSES:
                self._drop_oldest()
            self._entries.setdefault(address, {})[name] = self._clock() + keep

    def names_for(self, address: str) -> tuple[str, ...]:
        """The names `address` was answered for and which have not expired, sorted."""
        now = self._clock()
        with self._lock:
            names = self._entries.get(address, {})
            live = {name: until for name, until in names.items() if until > now}
            if live:
                self._entries[address] = live
            else:
                self._entries.pop(address, None)
            return tuple(sorted(live))

    def _drop_oldest(self) -> None:
        oldest = min(self._entries, key=lambda address: max(self._entries[address].values()))
        del self._entries[oldest]


def is_special_address(address: str) -> str | None:
    """Why `address` may never be a destination (`ipv6`, `host_local`, `not_an_address`), or None."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "not_an_address"
    if parsed.version == 6:
        return "ipv6"
    if any(parsed in net for net in _SPECIAL_NETWORKS):
        return "host_local"
    return None


def decide_query(policy: NetworkPolicy, name: str) -> Verdict:
    """Whether the resolver may answer `name` (normalised) at all."""
    if policy.mode == "egress":
        return Verdict(True, "egress", name)
    if policy.admits_name(name):
        return Verdict(True, "allowed_name", name)
    return Verdict(False, "name_not_allowed", name)


def decide_flow(
    policy: NetworkPolicy,
    book: AddressBook,
    address: str,
    port: int,
    is_host_address: Callable[[str], bool],
) -> Verdict:
    """Whether a flow to `address:port` may be opened, before any payload is seen."""
    special = is_special_address(address)
    if special is not None:
        return Verdict(False, special)
    if is_host_address(address):
        return Verdict(False, "host_local")
    if policy.mode == "egress":
        return Verdict(True, "egress", _first(book.names_for(address)))
    if policy.mode != "allowlist":
        return Verdict(False, "network_off")
    if policy.admits_address(ipaddress.IPv4Address(address), port):
        return Verdict(True, "allowed_cidr", _first(book.names_for(address)))
    names = book.names_for(address)
    if not names:
        return Verdict(False, "address_not_resolved")
    admitted = [name for name in names if policy.admits_name(name, port)]
    if admitted:
        return Verdict(True, "allowed_name", admitted[0])
    if any(policy.admits_name(name) for name in names):
        return Verdict(False, "port_not_allowed", names[0])
    return Verdict(False, "name_not_allowed", names[0])


def decide_server_name(
    policy: NetworkPolicy, flow: Verdict, resolved_names: Iterable[str], server_name: str | None, port: int
) -> Verdict:
    """The flow's verdict once its first bytes, TLS or HTTP, named `server_name` (None: named nothing).

    Only flows admitted for a resolved name are held to it: an allowed CIDR
    admits by address, and egress admits everything. Such a flow must name
    a host, one the address was resolved for and the policy admits on `port`.
    """
    if not flow.allowed or flow.reason != "allowed_name":
        return flow
    if server_name is None:
        return Verdict(False, "sni_missing", flow.name)
    if server_name in set(resolved_names) and policy.admits_name(server_name, port):
        return Verdict(True, "allowed_name", server_name)
    return Verdict(False, "sni_mismatch", server_name)


def _first(names: tuple[str, ...]) -> str | None:
    return names[0] if names else None
