"""Messages of the service ops: start, list, status, logs, stop; and a service's state as both sides see it.

Imports: this package's `message` and `paging`, protocol's `messages` and `limits`; standard library only.
"""

from __future__ import annotations

from typing import Any

from roost.protocol.limits import SERVICE_NAME, SERVICE_NAME_RULE
from roost.protocol.messages import Op
from roost.protocol.ops.execs import check_command
from roost.protocol.ops.message import GUEST_ROOT, Message, OpMessages, invalid, message, shown, wire
from roost.protocol.ops.paging import PageArgs, PageSummary
from roost.protocol.ops.secrets import SecretGrant

__all__ = [
    "LOG_STREAMS",
    "MESSAGES",
    "PROBE_KINDS",
    "RESTART_POLICIES",
    "ReadinessProbe",
    "ServiceListArgs",
    "ServiceListResult",
    "ServiceLogsArgs",
    "ServiceLogsResult",
    "ServiceStartArgs",
    "ServiceState",
    "ServiceStatusArgs",
    "ServiceStopArgs",
    "check_service_name",
]

PROBE_KINDS = ("file", "tcp", "http", "command")
RESTART_POLICIES = ("no", "on-failure", "always")
LOG_STREAMS = ("stdout", "stderr", "both")
_PROBE_HINT = "pick one readiness probe: a file, a TCP address, an HTTP URL or a command"


def check_service_name(name: object) -> str:
    """A name a service can have (it names its log files, so lower case).

    Raises:
        OpError: invalid_argument, with the rule as the hint.
    """
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        raise invalid(f"invalid service name {shown(name)}", hint=f"use {SERVICE_NAME_RULE}")
    return name


@message
class ReadinessProbe(Message):
    """How the agent tells a service is ready: exactly one of a file, a TCP address, an HTTP URL or a command."""

    file: str | None = wire(None)
    tcp: str | None = wire(None)
    http: str | None = wire(None)
    command: str | None = wire(None)
    timeout_s: float = wire(30.0, above=0)
    interval_s: float = wire(0.1, above=0)

    def check(self) -> None:
        given = [kind for kind in PROBE_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise invalid(
                f"give exactly one readiness probe, not {len(given)} ({', '.join(given) or 'none'})", hint=_PROBE_HINT
            )
        if not self.target:
            raise invalid(f"the {self.kind} probe needs a non-empty string target", hint=_PROBE_HINT)

    @property
    def kind(self) -> str:
        return next(kind for kind in PROBE_KINDS if getattr(self, kind) is not None)

    @property
    def target(self) -> str:
        target: str = getattr(self, self.kind)
        return target


@message
class ServiceState(Message):
    """A service as the agent reports it (`state`: starting, ready, failed, exited or stopped).

    The `service.list` records and the results of start, status and stop;
    `log_tail` (the end of its log) comes with a failed service's start and status.
    """

    name: str = wire()
    command: tuple[str, ...] = wire()
    cwd: str = wire(name=True)
    state: str = wire()
    restart: str = wire()
    probe: dict[str, Any] | None = wire(None)
    pid: int | None = wire(None)
    exit_code: int | None = wire(None)
    signal: str | None = wire(None)
    reason: str | None = wire(None)
    started_at: str | None = wire(None)
    ready_at: str | None = wire(None)
    stopped_at: str | None = wire(None)
    restarts: int = wire(0, minimum=0)
    log_tail: str | None = wire(None)


@message
class ServiceStartArgs(Message):
    """Start service `name` running `argv` or the shell script `command` (exactly one), and wait for `ready`."""

    OP = Op.SERVICE_START
    name: str = wire()
    argv: tuple[str, ...] | None = wire(None)
    command: str | None = wire(None)
    cwd: str = wire(GUEST_ROOT, name=True)
    env: dict[str, str] = wire({})
    # Secrets for this process only (never a record); a grant's value is left out of the repr.
    secrets: tuple[SecretGrant, ...] = wire(())
    ready: ReadinessProbe | None = wire(None)
    restart: str = wire("no", choices=RESTART_POLICIES)

    def check(self) -> None:
        check_service_name(self.name)
        check_command(self.argv, self.command)


@message
class ServiceListArgs(PageArgs):
    OP = Op.SERVICE_LIST


@message
class ServiceListResult(PageSummary):
    """Records: `ServiceState` (without `log_tail`), by name."""


@message
class ServiceStatusArgs(Message):
    OP = Op.SERVICE_STATUS
    name: str = wire()


@message
class ServiceLogsArgs(Message):
    """The last `tail` lines (all when not given) of a log on the data channel; `follow`: then new output too."""

    OP = Op.SERVICE_LOGS
    name: str = wire()
    stream: str = wire("both", choices=LOG_STREAMS)
    tail: int | None = wire(None, minimum=0, hint="tail must be a whole number of lines")
    follow: bool = wire(False)


@message
class ServiceLogsResult(Message):
    name: str = wire()
    stream: str = wire(choices=LOG_STREAMS)
    state: str = wire()


@message
class ServiceStopArgs(Message):
    """Stop a service: TERM, then KILL after `timeout` seconds (default 10)."""

    OP = Op.SERVICE_STOP
    name: str = wire()
    timeout: float | None = wire(None, above=0)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.SERVICE_START: OpMessages(ServiceStartArgs, ServiceState),
    Op.SERVICE_LIST: OpMessages(ServiceListArgs, ServiceListResult, ServiceState),
    Op.SERVICE_STATUS: OpMessages(ServiceStatusArgs, ServiceState),
    Op.SERVICE_LOGS: OpMessages(ServiceLogsArgs, ServiceLogsResult),
    Op.SERVICE_STOP: OpMessages(ServiceStopArgs, ServiceState),
}
