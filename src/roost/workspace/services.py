"""Services from the host's side: typed calls into the agent's supervisor.

Every argument is checked (see `roost.arguments` and `Readiness`) before the
agent is asked to start anything.

A service may publish ports (`workspace.network`): they carry its name, show in
its info, and are freed when it is stopped.

Imports: arguments, models, protocol (the service messages), errors, store records, workspace siblings.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from roost import arguments
from roost.errors import InvalidArgument
from roost.models import ServiceInfo
from roost.protocol.messages import CH_DATA
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.services import (
    LOG_STREAMS,
    RESTART_POLICIES,
    ServiceListArgs,
    ServiceLogsArgs,
    ServiceLogsResult,
    ServiceStartArgs,
    ServiceState,
    ServiceStatusArgs,
    ServiceStopArgs,
)
from roost.store.records import WorkspaceRecord
from roost.workspace import network as gateway
from roost.workspace.engine import Engine
from roost.workspace.network_request import NetworkRequest, check_supported, publish_ports
from roost.workspace.op_args import checked_args
from roost.workspace.readiness import Readiness
from roost.workspace.secrets import SecretUses, grants_for

# Restart policies whose services come back with their workspace, and the states of a service that is up.
KEPT_POLICIES = ("always", "on-failure")
ACTIVE_STATES = ("starting", "ready")


def service_info(state: ServiceState) -> ServiceInfo:
    """A service as the models show it, from the agent's report."""
    return ServiceInfo(
        name=state.name,
        command=state.command,
        cwd=state.cwd,
        state=state.state,
        restart=state.restart,
        probe=state.probe,
        pid=state.pid,
        exit_code=state.exit_code,
        signal=state.signal,
        reason=state.reason,
        started_at=state.started_at,
        ready_at=state.ready_at,
        stopped_at=state.stopped_at,
        restarts=state.restarts,
        log_tail=state.log_tail,
    )


def _start_args(
    name: str,
    command: str | Sequence[str],
    cwd: str | None,
    env: dict[str, str] | None,
    ready: Readiness | None,
    restart: str,
) -> ServiceStartArgs:
    """The agent's arguments of a service start, every one checked (as `start_service` says)."""
    checked_name = arguments.service_name(name)
    checked = arguments.command(command, "service's command")
    where = GUEST_ROOT if cwd is None else arguments.guest_name(cwd, "cwd")
    env_vars = arguments.env_vars(env)
    if restart not in RESTART_POLICIES:
        raise InvalidArgument(f"unknown restart policy {restart!r}", hint=f"use one of {', '.join(RESTART_POLICIES)}")
    if ready is not None and not isinstance(ready, Readiness):
        raise InvalidArgument("ready must be a Readiness", hint="e.g. Readiness(tcp='8000')")
    with checked_args():
        return ServiceStartArgs(
            name=checked_name,
            argv=None if isinstance(checked, str) else tuple(checked),
            command=checked if isinstance(checked, str) else None,
            cwd=where,
            env=env_vars,
            ready=(ready or Readiness()).to_probe(cwd),
            restart=restart,
        )


def start_service(
    engine: Engine,
    record: WorkspaceRecord,
    name: str,
    command: str | Sequence[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    ready: Readiness | None = None,
    restart: str = "no",
    publish: Sequence[str | int] | None = None,
    secret_env: SecretUses = (),
    secret_files: SecretUses = (),
) -> ServiceInfo:
    """Start a service once every argument is known to be good, and wait for its readiness.

    `secret_env`/`secret_files` give it attached secrets (see `workspace.secrets`); the agent keeps them
    in memory (and its tmpfs file) while a restart may need them.

    `publish` serves guest ports on the host's loopback under the service's name (see
    `workspace.network`) from once it has started until it is stopped.

    A service that is up with `restart` `always` or `on-failure` is kept: its workspace's next
    `start` or `restart` starts it again (`workspace.revival`), until `stop_service` ends it.

    Raises:
        InvalidArgument: a bad name, command, cwd, env, restart policy, readiness probe or port
            to publish (nothing is started); network_unsupported on a backend without networking.
        PortInUse: a host port to publish is taken (nothing is started).
        RoostError: service_exists, or the agent's own failure.
    """
    args = _start_args(name, command, cwd, env, ready, restart)
    given = [publish] if isinstance(publish, str | int) else list(publish or ())
    kept = Kept(args, tuple(str(port) for port in given), _stored_uses(secret_env), _stored_uses(secret_files))
    started = _start(engine, record, kept)
    if restart in KEPT_POLICIES and started.state in ACTIVE_STATES:
        engine.store.update(
            record.id, lambda r: r.replace(kept_services={**r.kept_services, args.name: kept.to_json()})
        )
    elif args.name in record.kept_services:
        forget_kept(engine, record.id, (args.name,))
    return started


@dataclass(frozen=True)
class Kept:
    """How a service was started, as its workspace's record keeps it for the next start (no secret value:
    the secrets it uses are kept by name, and granted again then)."""

    args: ServiceStartArgs
    publish: tuple[str, ...]
    secret_env: list[str] | dict[str, str]
    secret_files: list[str] | dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "args": dataclasses.replace(self.args, secrets=()).to_wire(),
            "publish": list(self.publish),
            "secret_env": self.secret_env,
            "secret_files": self.secret_files,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Kept:
        """Raises: InvalidArgument: not what `to_json` wrote."""
        with checked_args():
            args = ServiceStartArgs.from_wire(data.get("args", {}))
        publish, env, files = data.get("publish", []), data.get("secret_env", []), data.get("secret_files", [])
        if not isinstance(publish, list) or not isinstance(env, list | dict) or not isinstance(files, list | dict):
            raise InvalidArgument(f"the kept start of service {args.name!r} is malformed")
        return cls(args, tuple(str(port) for port in publish), env, files)


def kept_without_ports(kept_services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The kept services as another workspace keeps them: publishing nothing (a host port serves one
    workspace). Raises: InvalidArgument: a kept start is malformed."""
    return {
        name: dataclasses.replace(Kept.from_json(kept), publish=()).to_json() for name, kept in kept_services.items()
    }


def _stored_uses(uses: SecretUses) -> list[str] | dict[str, str]:
    if isinstance(uses, Mapping):
        return {str(name): str(value) for name, value in uses.items()}
    if isinstance(uses, str):
        return [uses]
    return [str(use) for use in uses]


def start_kept(engine: Engine, record: WorkspaceRecord, name: str) -> ServiceInfo:
    """Start again the service `name` the record keeps, as it was started (its secrets granted anew).

    Raises:
        RoostError: as `start_service`; secret_not_found for a secret detached since.
    """
    return _start(engine, record, Kept.from_json(record.kept_services[name]))


def forget_kept(engine: Engine, ws_id: str, names: Sequence[str]) -> None:
    """Services the workspace's next start leaves alone: stopped, or started again without a restart policy."""
    engine.store.update(
        ws_id, lambda r: r.replace(kept_services={n: k for n, k in r.kept_services.items() if n not in names})
    )


def _start(engine: Engine, record: WorkspaceRecord, kept: Kept) -> ServiceInfo:
    """Grant its secrets, reserve its ports, start it and publish them (see `start_service`)."""
    args = kept.args
    granted = grants_for(engine.home, record, kept.secret_env, kept.secret_files)
    if granted:
        args = dataclasses.replace(args, secrets=granted)
    ports = publish_ports(kept.publish or None)
    if ports:
        check_supported(engine.backend(record), NetworkRequest(ports=ports))
        gateway.reserve(ports, record.ports)
    started = service_info(engine.call(record, args).result_as(ServiceState))
    if not ports:
        return started
    try:
        record = gateway.publish_service(engine, record.id, started.name, ports)
    except BaseException:
        with checked_args():
            stop = ServiceStopArgs(name=started.name, timeout=0.001)
        engine.call(record, stop)
        raise
    return dataclasses.replace(started, ports=gateway.service_ports(record, started.name))


def _with_ports(record: WorkspaceRecord, service: ServiceInfo) -> ServiceInfo:
    ports = gateway.service_ports(record, service.name)
    return dataclasses.replace(service, ports=ports) if ports else service


def list_services(engine: Engine, record: WorkspaceRecord) -> list[ServiceInfo]:
    """Every service, by name (streamed: the list has no length limit)."""
    with engine.records(record, ServiceListArgs()) as listed:
        return [_with_ports(record, service_info(state)) for state in listed.records_as(ServiceState)]


def service_status(engine: Engine, record: WorkspaceRecord, name: str) -> ServiceInfo:
    with checked_args():
        args = ServiceStatusArgs(name=name)
    return _with_ports(record, service_info(engine.call(record, args).result_as(ServiceState)))


def _log_args(name: str, stream: str, tail: int | None, *, follow: bool = False) -> ServiceLogsArgs:
    if stream not in LOG_STREAMS:
        raise InvalidArgument(f"unknown log stream {stream!r}", hint=f"use one of {', '.join(LOG_STREAMS)}")
    lines = arguments.optional_count(tail, "tail", arguments.MAX_LOG_TAIL_LINES, low=0, unit="lines")
    with checked_args():
        return ServiceLogsArgs(name=name, stream=stream, tail=lines, follow=follow)


def service_logs(
    engine: Engine, record: WorkspaceRecord, name: str, *, stream: str = "both", tail: int | None = None
) -> str:
    reply = engine.call(record, _log_args(name, stream, tail))
    reply.result_as(ServiceLogsResult)
    return reply.streams.get(CH_DATA, b"").decode("utf-8", errors="replace")


def follow_logs(
    engine: Engine,
    record: WorkspaceRecord,
    name: str,
    on_output: Callable[[bytes], None],
    stop: threading.Event,
    *,
    stream: str = "both",
    tail: int | None = None,
) -> None:
    """Stream a service's log until `stop` is set or the service ends."""
    args = _log_args(name, stream, tail, follow=True)
    engine.call_until(record, args, lambda _ch, data: on_output(data), stop)


def stop_service(engine: Engine, record: WorkspaceRecord, name: str, *, timeout: float | None = None) -> ServiceInfo:
    """Stop a service; the ports it published are freed."""
    grace = arguments.stop_grace(timeout)
    if grace is not None and grace <= 0:
        grace = 0.001  # the agent takes a positive grace; this is "at once"
    with checked_args():
        args = ServiceStopArgs(name=name, timeout=grace)
    stopped = service_info(engine.call(record, args).result_as(ServiceState))
    gateway.unpublish_service(engine, record.id, stopped.name)
    if stopped.name in record.kept_services:
        forget_kept(engine, record.id, (stopped.name,))
    return stopped
