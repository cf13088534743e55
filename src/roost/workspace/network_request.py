"""What a caller asks of a workspace's network, checked before anything starts, and how it shows.

A request is a policy mode, allow-list entries and ports to publish, as any
face takes them (strings, or the SDK's ints for ports); it parses into a
`NetworkRequest` of plain values (`roost.network.policy`) or fails with
`invalid_argument` and a hint. A backend whose workspaces cannot be held to
a policy (`Backend.network_refusal`) refuses anything but `off` with no
ports: `network_unsupported`, never a policy accepted and not enforced.

Imports: backends (the Backend seam), errors, models, network.policy, store.records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roost.backends import Backend
from roost.errors import InvalidArgument
from roost.models import NetworkInfo, PortInfo
from roost.network.policy import NetworkPolicy, PublishedPort, parse_policy, parse_publish
from roost.store.records import PortRequest, WorkspaceRecord

_UNSUPPORTED_HINT = "use the sandbox backend for a network policy or published ports, or the default policy, off"


@dataclass(frozen=True)
class NetworkRequest:
    """A workspace's network as asked for: its policy and the ports it publishes (its own)."""

    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    ports: tuple[PublishedPort, ...] = ()

    @property
    def wanted(self) -> bool:
        """Whether it needs roost's gateway (anything beyond loopback only)."""
        return self.policy.mode != "off" or bool(self.ports)


def network_request(
    policy: str | None = "off", allow: Sequence[str] | None = None, publish: Sequence[str | int] | None = None
) -> NetworkRequest:
    """Parse a policy mode (None: off), allow-list entries and ports to publish.

    Raises:
        InvalidArgument: unknown policy or preset, malformed name or CIDR, port out of range,
            entries for a policy other than allowlist, a port published twice.
    """
    if policy is not None and not isinstance(policy, str):
        raise InvalidArgument(f"the network policy must be a mode name, not {policy!r}", hint="e.g. 'egress'")
    return NetworkRequest(parse_policy(policy or "off", _texts(allow, "allow", "'pypi.org'")), publish_ports(publish))


def publish_ports(publish: Sequence[str | int] | None) -> tuple[PublishedPort, ...]:
    """Ports to publish (`[HOST_ADDRESS:][HOST_PORT:]GUEST_PORT` each, or a bare guest port number).

    Raises:
        InvalidArgument: a malformed port, or one host port (or guest port) given twice.
    """
    ports = tuple(parse_publish(str(item)) for item in _texts(publish, "publish", "'8000'", numbers=True))
    check_distinct(ports)
    return ports


def _texts(items: object, what: str, example: str, *, numbers: bool = False) -> list[str]:
    """Entries as given by any face: a list, or one bare string (or port number) as a list of one."""
    if items is None:
        return []
    if isinstance(items, str | int):
        items = [items]
    if not isinstance(items, list | tuple):
        raise InvalidArgument(f"{what} must be a list of strings", hint=f"e.g. [{example}]")
    listed: list[Any] = list(items)
    kinds = (str, int) if numbers else (str,)
    if not all(isinstance(item, kinds) and not isinstance(item, bool) for item in listed):
        raise InvalidArgument(f"{what} must be a list of strings", hint=f"e.g. [{example}]")
    return [str(item) for item in listed]


def check_distinct(ports: Sequence[PublishedPort]) -> None:
    """Raises: InvalidArgument: two ports on one host address and port, or one guest port twice."""
    seen_host: set[tuple[str, int]] = set()
    seen_guest: set[int] = set()
    for port in ports:
        host = (port.host_address, port.host_port)
        if (port.host_port and host in seen_host) or port.guest_port in seen_guest:
            raise InvalidArgument(
                f"port {port.text} is published twice",
                hint="publish each guest port once, each on its own host port",
            )
        seen_host.add(host)
        seen_guest.add(port.guest_port)


def check_supported(backend: Backend[Any], request: NetworkRequest) -> None:
    """Raises: InvalidArgument: network_unsupported when `backend` cannot hold a workspace to `request`."""
    if request.wanted and backend.network_refusal is not None:
        asked = f"network policy {request.policy.mode!r}" if request.policy.mode != "off" else "published ports"
        raise InvalidArgument(f"{asked}: {backend.network_refusal}", code="network_unsupported", hint=_UNSUPPORTED_HINT)


def port_infos(requests: Iterable[PortRequest]) -> tuple[PortInfo, ...]:
    return tuple(PortInfo(port.host_address, port.host_port, port.guest_port, service) for port, service in requests)


def network_info(record: WorkspaceRecord, bound: Sequence[PortInfo] | None, detail: str) -> NetworkInfo:
    """How `record`'s network shows; `bound` are the ports its gateway holds (None: no gateway runs)."""
    return NetworkInfo(
        policy=record.network_policy.mode,
        allow=tuple(entry.text for entry in record.network_policy.allow),
        ports=tuple(bound) if bound is not None else port_infos(record.ports),
        enforced=bound is not None,
        detail=detail,
    )
