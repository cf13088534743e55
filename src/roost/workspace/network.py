"""A workspace's network gateway through its life: attached once its agent is up, changed live,
detached when it stops or is deleted, and read back (what it holds, what it decided).

The gateway (`roost.network.attachment`) is a host process per workspace that joins the
workspace's namespaces from outside (through the pid its backend names) and holds its
policy and published ports; its state lives in `<ws_dir>/network` (0700, outside
/workspace). The workspace's record keeps the policy and ports asked for, and the running
gateway's own record (`network`). Callers hold the workspace's lock where a function says so.

Imports: errors, models, network (attachment and authority, lazily; policy), store (records, states), workspace siblings.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from roost.errors import NetworkError, PortInUse, Remedy, RoostError
from roost.models import NetworkDecision, NetworkInfo, PortInfo
from roost.network.policy import NetworkPolicy, PublishedPort
from roost.store.records import PortRequest, WorkspaceRecord
from roost.store.states import RUNNING
from roost.workspace.engine import Engine
from roost.workspace.network_request import NetworkRequest, check_supported, network_info
from roost.workspace.secrets import proxy_substitutions

if TYPE_CHECKING:
    from roost.network.attachment import Decision, NetworkBoot

GATEWAY_DIR = "network"


def gateway_dir(engine: Engine, ws_id: str) -> Path:
    return engine.store.dir(ws_id) / GATEWAY_DIR


def gateway_of(record: WorkspaceRecord) -> NetworkBoot | None:
    """The gateway's record as the workspace keeps it (it may have died since), or None (none was
    started, or its record does not read)."""
    if record.network is None:
        return None
    from roost.network.attachment import NetworkBoot

    try:
        return NetworkBoot.from_json(record.network)
    except (RoostError, ValueError, TypeError, KeyError):
        return None


def trusted_ca(engine: Engine, ws_id: str, policy: NetworkPolicy) -> bytes | None:
    """The workspace's CA certificate (made at first use, kept in its network dir) for its trust
    store when it has a network to reach (proxy-mode secrets need it); else None."""
    if policy.mode == "off":
        return None
    from roost.network.authority import workspace_ca_pem

    return workspace_ca_pem(gateway_dir(engine, ws_id))


def _wanted(policy: NetworkPolicy, ports: Sequence[PortRequest]) -> bool:
    return policy.mode != "off" or bool(ports)


def reserve(ports: Sequence[PublishedPort], held: Sequence[PortRequest] = ()) -> None:
    """Raises: PortInUse: a host port to publish, not one this workspace holds already, is taken."""
    if not any(port.host_port for port in ports):
        return  # any free port is free by definition
    from roost.network.attachment import ensure_ports_free

    mine = {(port.host_address, port.host_port) for port, _ in held}
    ensure_ports_free([port for port in ports if (port.host_address, port.host_port) not in mine])


def reserve_at_start(record: WorkspaceRecord) -> None:
    """Raises: PortInUse: a host port the stopped workspace publishes was taken meanwhile; the hint
    says how to start it anyway (free the port, or publish another)."""
    try:
        reserve([port for port, _ in record.ports])
    except PortInUse as exc:
        taken = (exc.details.get("host_address"), exc.details.get("host_port"))
        owner = next((service for port, service in record.ports if (port.host_address, port.host_port) == taken), None)
        if owner is not None:
            exc.hint = f"free that host port, or start the workspace and publish service {owner!r} on another"
            raise
        raise exc.with_remedy(
            Remedy(
                "free that host port, or publish the guest port on another (or any: 0:GUEST_PORT) and start again",
                "network_set",
                workspace=record.id,
                arguments=("--publish", "HOST_PORT:GUEST_PORT"),
            )
        ) from None


def bring_up(engine: Engine, record: WorkspaceRecord) -> WorkspaceRecord:
    """Attach a gateway to a workspace whose agent is up, when its policy or ports need one.

    The caller holds the lock and saves the record returned.

    Raises:
        NetworkError: network_unavailable when the backend names no namespace to join, or the
            gateway cannot start.
        PortInUse: a host port is taken.
    """
    if not _wanted(record.network_policy, record.ports):
        return record
    pid = engine.backend(record).network_namespace_pid(record.boot)
    if pid is None:
        raise NetworkError(
            f"workspace {record.id} has no running namespace to give a network", hint="restart the workspace"
        )
    from roost.network.attachment import attach

    proxied = proxy_substitutions(engine.home, record)
    boot = attach(gateway_dir(engine, record.id), pid, record.network_policy, record.ports, substitutions=proxied)
    return record.replace(network=boot.to_json())


def take_down(engine: Engine, record: WorkspaceRecord) -> WorkspaceRecord:
    """Stop the workspace's gateway (its ports freed); nothing to do when none runs."""
    if record.network is None:
        return record
    from roost.network.attachment import detach

    detach(gateway_dir(engine, record.id), gateway_of(record))
    return record.replace(network=None)


# What a change makes of the workspace's network: its record as it is now -> (policy, ports).
Wanted = Callable[[WorkspaceRecord], tuple[NetworkPolicy, tuple[PortRequest, ...]]]


def change(engine: Engine, ws_id: str, wanted: Wanted) -> WorkspaceRecord:
    """Give a workspace the policy and ports `wanted` makes of its record (read under its lock, so
    concurrent changes compose): live when it runs (no restart), else at its next start.

    Raises:
        InvalidArgument: network_unsupported on a backend that cannot hold it.
        PortInUse: a new host port is taken (nothing changes).
        RoostError: the gateway's failure.
    """
    with engine.store.lock(ws_id):
        record = engine.store.load(ws_id)
        policy, ports = wanted(record)
        if (policy, ports) == (record.network_policy, record.ports) and not _gateway_missing(record):
            return record
        check_supported(engine.backend(record), NetworkRequest(policy, tuple(port for port, _ in ports)))
        reserve([port for port, _ in ports], record.ports)
        record = record.replace(network_policy=policy, ports=ports)
        if record.state == RUNNING:
            record = _apply(engine, record)
        engine.store.save(record)
        return record


def _gateway_missing(record: WorkspaceRecord) -> bool:
    """Whether a running workspace that needs a gateway has none running (it died): a change,
    even to what it has, starts a new one."""
    if record.state != RUNNING or not _wanted(record.network_policy, record.ports):
        return False
    gateway = gateway_of(record)
    return gateway is None or not gateway.is_running()


def _apply(engine: Engine, record: WorkspaceRecord) -> WorkspaceRecord:
    """The running workspace's gateway made to hold what `record` asks for now."""
    gateway = gateway_of(record)
    if gateway is None or not gateway.is_running():
        return bring_up(engine, take_down(engine, record))
    if not _wanted(record.network_policy, record.ports):
        return take_down(engine, record)
    from roost.network.attachment import update

    proxied = proxy_substitutions(engine.home, record)
    boot = update(gateway_dir(engine, record.id), gateway, record.network_policy, record.ports, substitutions=proxied)
    return record.replace(network=boot.to_json())


def push_secrets(engine: Engine, ws_id: str) -> WorkspaceRecord:
    """Give a running workspace's gateway the proxy-mode secrets its record has now (attached or detached);
    one that does not run gets them when it starts.

    Raises:
        RoostError: the gateway's failure.
    """
    with engine.store.lock(ws_id):
        record = engine.store.load(ws_id)
        gateway = gateway_of(record)
        if record.state != RUNNING or gateway is None or not gateway.is_running():
            return record
        record = _apply(engine, record)
        engine.store.save(record)
        return record


def set_network(
    engine: Engine,
    ws_id: str,
    policy: NetworkPolicy | None = None,
    own_ports: tuple[PublishedPort, ...] | None = None,
) -> WorkspaceRecord:
    """`workspace network set`: a new policy (None: as it is) and the workspace's own ports (None:
    as they are); its services' ports stay. See `change`."""

    def wanted(record: WorkspaceRecord) -> tuple[NetworkPolicy, tuple[PortRequest, ...]]:
        if own_ports is None:
            ports = record.ports
        else:
            ports = (*((port, None) for port in own_ports), *((p, s) for p, s in record.ports if s is not None))
        return (record.network_policy if policy is None else policy), tuple(ports)

    return change(engine, ws_id, wanted)


def publish_service(engine: Engine, ws_id: str, service: str, ports: Sequence[PublishedPort]) -> WorkspaceRecord:
    """Publish a service's ports (replacing any it had). See `change`."""

    def wanted(record: WorkspaceRecord) -> tuple[NetworkPolicy, tuple[PortRequest, ...]]:
        kept = tuple((p, s) for p, s in record.ports if s != service)
        return record.network_policy, (*kept, *((port, service) for port in ports))

    return change(engine, ws_id, wanted)


def unpublish_service(engine: Engine, ws_id: str, service: str) -> WorkspaceRecord:
    """Free a service's ports (nothing to do when it has none)."""
    return change(engine, ws_id, lambda r: (r.network_policy, tuple((p, s) for p, s in r.ports if s != service)))


def network_view(record: WorkspaceRecord) -> NetworkInfo:
    """How a workspace's network shows: its policy, its ports, and whether a gateway holds them."""
    gateway = gateway_of(record)
    if gateway is not None and gateway.is_running():
        bound = tuple(PortInfo(p.host_address, p.host_port, p.guest_port, p.service) for p in gateway.ports)
        return network_info(record, bound, f"roost's gateway (pid {gateway.gateway_pid}) holds it")
    if gateway is not None:
        return network_info(record, None, "its gateway is gone: setting the network (even as it is) starts a new one")
    if not _wanted(record.network_policy, record.ports):
        return network_info(record, None, "loopback only")
    return network_info(record, None, f"no gateway runs: the workspace is {record.state}")


def service_ports(record: WorkspaceRecord, service: str) -> tuple[PortInfo, ...]:
    return tuple(port for port in network_view(record).ports if port.service == service)


def _decision(decision: Decision) -> NetworkDecision:
    """The gateway's log entry as the faces' value (the same fields)."""
    return NetworkDecision(**dataclasses.asdict(decision))


def decisions(engine: Engine, record: WorkspaceRecord, *, denied: bool = False) -> list[NetworkDecision]:
    """Every decision the log keeps (it is bounded), oldest first."""
    from roost.network.attachment import read_decisions

    return [_decision(d) for d in read_decisions(gateway_dir(engine, record.id), denied_only=denied)]


def follow_decisions(
    engine: Engine,
    record: WorkspaceRecord,
    on_decision: Callable[[NetworkDecision], None],
    stop: threading.Event,
    *,
    denied: bool = False,
) -> None:
    """Every decision kept, then each new one as it is made, until `stop` is set."""
    from roost.network.attachment import read_decisions

    found = read_decisions(gateway_dir(engine, record.id), denied_only=denied, follow=True, stop=stop.is_set)
    for decision in found:
        on_decision(_decision(decision))
