"""Services from the host's side: typed calls into the agent's supervisor.

Imports: models, protocol, errors, store records, workspace siblings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from roost.errors import InvalidArgument
from roost.models import ServiceInfo
from roost.protocol import Op
from roost.store.records import WorkspaceRecord
from roost.workspace.runtime import Runtime

PROBES = ("file", "tcp", "http", "command")
RESTART = ("no", "on-failure", "always")
LOG_STREAMS = ("stdout", "stderr", "both")


@dataclass(frozen=True)
class Readiness:
    """Exactly one of file/tcp/http/command, with how long and how often to probe."""

    file: str | None = None
    tcp: str | None = None
    http: str | None = None
    command: str | None = None
    timeout_s: float = 30.0
    interval_ms: int = 100

    def to_args(self) -> dict[str, Any] | None:
        given = {
            k: v
            for k, v in (("file", self.file), ("tcp", self.tcp), ("http", self.http), ("command", self.command))
            if v is not None
        }
        if not given:
            return None
        if len(given) > 1:
            raise InvalidArgument(
                f"give one readiness probe, not {len(given)} ({', '.join(given)})",
                hint="pick one of --ready-file, --ready-tcp, --ready-http, --ready-command",
            )
        if self.timeout_s <= 0 or self.interval_ms <= 0:
            raise InvalidArgument("--ready-timeout and --ready-interval-ms must be positive")
        return {**given, "timeout_s": self.timeout_s, "interval_s": self.interval_ms / 1000}


def _info(data: dict[str, Any]) -> ServiceInfo:
    return ServiceInfo(
        name=str(data["name"]),
        command=tuple(data.get("command") or ()),
        cwd=str(data.get("cwd", "/workspace")),
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
    rt: Runtime,
    record: WorkspaceRecord,
    name: str,
    command: str | Sequence[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    ready: Readiness | None = None,
    restart: str = "no",
) -> ServiceInfo:
    if restart not in RESTART:
        raise InvalidArgument(f"restart must be one of {', '.join(RESTART)}")
    if not command:
        raise InvalidArgument("give the service's command", hint="e.g. -- python3 -m http.server 8000")
    args: dict[str, Any] = {"name": name, "env": dict(env or {}), "restart": restart}
    if isinstance(command, str):
        args["command"] = command
    else:
        args["argv"] = list(command)
    if cwd is not None:
        args["cwd"] = cwd
    probe = (ready or Readiness()).to_args()
    if probe is not None:
        args["ready"] = probe
    return _info(rt.call(record, Op.SERVICE_START, args).result)


def list_services(rt: Runtime, record: WorkspaceRecord) -> list[ServiceInfo]:
    return [_info(s) for s in rt.call(record, Op.SERVICE_LIST).result.get("services", [])]


def service_status(rt: Runtime, record: WorkspaceRecord, name: str) -> ServiceInfo:
    return _info(rt.call(record, Op.SERVICE_STATUS, {"name": name}).result)


def service_logs(
    rt: Runtime, record: WorkspaceRecord, name: str, *, stream: str = "both", tail: int | None = None
) -> str:
    if stream not in LOG_STREAMS:
        raise InvalidArgument(f"stream must be one of {', '.join(LOG_STREAMS)}")
    args: dict[str, Any] = {"name": name, "stream": stream}
    if tail is not None:
        args["tail"] = tail
    return rt.call(record, Op.SERVICE_LOGS, args).body.decode("utf-8", errors="replace")


def follow_logs(
    rt: Runtime,
    record: WorkspaceRecord,
    name: str,
    on_output: Callable[[bytes], None],
    stop: threading.Event,
    *,
    stream: str = "both",
    tail: int | None = None,
) -> None:
    """Stream a service's log until `stop` is set or the service ends."""
    if stream not in LOG_STREAMS:
        raise InvalidArgument(f"stream must be one of {', '.join(LOG_STREAMS)}")
    args: dict[str, Any] = {"name": name, "stream": stream, "follow": True}
    if tail is not None:
        args["tail"] = tail
    rt.call_until(record, Op.SERVICE_LOGS, args, lambda _ch, data: on_output(data), stop)


def stop_service(rt: Runtime, record: WorkspaceRecord, name: str, *, timeout: float | None = None) -> ServiceInfo:
    args: dict[str, Any] = {"name": name}
    if timeout is not None:
        if timeout < 0:
            raise InvalidArgument("timeout must not be negative")
        args["timeout"] = timeout if timeout > 0 else 0.001
    return _info(rt.call(record, Op.SERVICE_STOP, args).result)


def stop_all(rt: Runtime, record: WorkspaceRecord) -> list[str]:
    """Stop every starting or ready service (before a reset); return their names."""
    stopped = []
    for service in list_services(rt, record):
        if service.state in ("starting", "ready"):
            stop_service(rt, record, service.name, timeout=2.0)
            stopped.append(service.name)
    return stopped
