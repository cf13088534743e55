"""Services from the host's side: typed calls into the agent's supervisor.

Every argument is checked (see `roost.arguments` and `Readiness`) before the
agent is asked to start anything.

A service may publish ports (`workspace.network`): they carry its name, show in
its info, and are freed when it is stopped.

Imports: arguments, models, protocol, errors, store records, workspace siblings.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

from roost import arguments
from roost.errors import InvalidArgument
from roost.models import ServiceInfo
from roost.protocol import Op
from roost.store.records import WorkspaceRecord
from roost.workspace import network as gateway
from roost.workspace.engine import Engine
from roost.workspace.network_request import NetworkRequest, check_supported, publish_ports
from roost.workspace.readiness import Readiness
from roost.workspace.wire_names import received_name

RESTART = ("no", "on-failure", "always")
LOG_STREAMS = ("stdout", "stderr", "both")


def _info(data: dict[str, Any]) -> ServiceInfo:
    return ServiceInfo(
        name=str(data["name"]),
        command=tuple(data.get("command") or ()),
        cwd=received_name(data.get("cwd", "/workspace")),
        state=str(data["state"]),
        restart=str(data.get("restart", "no")),
        probe=data.get("probe"),
        pid=data.get("pid"),
        exit_code=data.get("exit_code"),
        signal=data.get("signal"),
        reason=data.get("reason"),
        started_at=data.get("started_at"),
        ready_at=data.get("ready_at"),
        stopped_at=data.get("stopped_at"),
        restarts=int(data.get("restarts", 0)),
        log_tail=data.get("log_tail"),
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
) -> ServiceInfo:
    """Start a service once every argument is known to be good, and wait for its readiness.

    `publish` serves guest ports on the host's loopback under the service's name (see
    `workspace.network`) from once it has started until it is stopped.

    Raises:
        InvalidArgument: a bad name, command, cwd, env, restart policy, readiness probe or port
            to publish (nothing is started); network_unsupported on a backend without networking.
        PortInUse: a host port to publish is taken (nothing is started).
        RoostError: service_exists, or the agent's own failure.
    """
    args: dict[str, Any] = {"name": arguments.service_name(name)}
    checked = arguments.command(command, "service's command")
    args["command" if isinstance(checked, str) else "argv"] = checked
    if cwd is not None:
        args["cwd"] = arguments.guest_path(cwd, "cwd")
    args["env"] = arguments.env_vars(env)
    if restart not in RESTART:
        raise InvalidArgument(f"unknown restart policy {restart!r}", hint=f"use one of {', '.join(RESTART)}")
    args["restart"] = restart
    if ready is not None and not isinstance(ready, Readiness):
        raise InvalidArgument("ready must be a Readiness", hint="e.g. Readiness(tcp='8000')")
    probe = (ready or Readiness()).to_args(cwd)
    if probe is not None:
        args["ready"] = probe
    ports = publish_ports(publish)
    if ports:
        check_supported(engine.backend(record), NetworkRequest(ports=ports))
        gateway.reserve(ports, record.ports)
    started = _info(engine.call(record, Op.SERVICE_START, args).result)
    if not ports:
        return started
    try:
        record = gateway.publish_service(engine, record.id, started.name, ports)
    except BaseException:
        engine.call(record, Op.SERVICE_STOP, {"name": started.name, "timeout": 0.001})
        raise
    return dataclasses.replace(started, ports=gateway.service_ports(record, started.name))


def _with_ports(record: WorkspaceRecord, service: ServiceInfo) -> ServiceInfo:
    ports = gateway.service_ports(record, service.name)
    return dataclasses.replace(service, ports=ports) if ports else service


def list_services(engine: Engine, record: WorkspaceRecord) -> list[ServiceInfo]:
    """Every service, by name (streamed: the list has no length limit)."""
    with engine.records(record, Op.SERVICE_LIST) as listed:
        return [_with_ports(record, _info(s)) for s in listed]


def service_status(engine: Engine, record: WorkspaceRecord, name: str) -> ServiceInfo:
    return _with_ports(record, _info(engine.call(record, Op.SERVICE_STATUS, {"name": name}).result))


def _log_args(name: str, stream: str, tail: int | None) -> dict[str, Any]:
    if stream not in LOG_STREAMS:
        raise InvalidArgument(f"unknown log stream {stream!r}", hint=f"use one of {', '.join(LOG_STREAMS)}")
    args: dict[str, Any] = {"name": name, "stream": stream}
    lines = arguments.optional_count(tail, "tail", arguments.MAX_LOG_TAIL_LINES, low=0, unit="lines")
    if lines is not None:
        args["tail"] = lines
    return args


def service_logs(
    engine: Engine, record: WorkspaceRecord, name: str, *, stream: str = "both", tail: int | None = None
) -> str:
    args = _log_args(name, stream, tail)
    return engine.call(record, Op.SERVICE_LOGS, args).streams.get("data", b"").decode("utf-8", errors="replace")


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
    args = {**_log_args(name, stream, tail), "follow": True}
    engine.call_until(record, Op.SERVICE_LOGS, args, lambda _ch, data: on_output(data), stop)


def stop_service(engine: Engine, record: WorkspaceRecord, name: str, *, timeout: float | None = None) -> ServiceInfo:
    """Stop a service; the ports it published are freed."""
    args: dict[str, Any] = {"name": name}
    grace = arguments.stop_grace(timeout)
    if grace is not None:
        args["timeout"] = grace if grace > 0 else 0.001  # the agent takes a positive grace; this is "at once"
    stopped = _info(engine.call(record, Op.SERVICE_STOP, args).result)
    gateway.unpublish_service(engine, record.id, stopped.name)
    return stopped
