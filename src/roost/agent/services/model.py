"""Services as data: their specs, readiness probes, states and records.

A pure module: no processes, no I/O beyond (de)serialising records, so the
state machine can be read and tested on its own.

    starting --ready--> ready --exit--> exited | failed --restart--> starting
        \\--probe timeout / exit--> failed           any --stop--> stopped

Standard library and `roost.protocol` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from roost.protocol import Code, OpError
from roost.protocol.limits import SERVICE_NAME, SERVICE_NAME_RULE

STARTING, READY, FAILED, EXITED, STOPPED = "starting", "ready", "failed", "exited", "stopped"
STATES = (STARTING, READY, FAILED, EXITED, STOPPED)
ACTIVE = (STARTING, READY)
PROBE_KINDS = ("file", "tcp", "http", "command")
RESTART_POLICIES = ("no", "on-failure", "always")
_NEXT = {
    STARTING: {READY, FAILED, EXITED, STOPPED},
    READY: {FAILED, EXITED, STOPPED},
    FAILED: {STARTING, STOPPED},
    EXITED: {STARTING, STOPPED},
    STOPPED: {STARTING},
}


@dataclass(frozen=True)
class ProbeSpec:
    """How to tell a service is ready: exactly one kind, with its target."""

    kind: str
    target: str
    timeout_s: float = 30.0
    interval_s: float = 0.1

    @classmethod
    def from_args(cls, raw: Any) -> ProbeSpec | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise OpError(Code.INVALID_ARGUMENT, "'ready' must be an object")
        kinds = [k for k in PROBE_KINDS if raw.get(k) is not None]
        if len(kinds) != 1:
            raise OpError(
                Code.INVALID_ARGUMENT,
                f"give exactly one readiness probe, not {len(kinds)} ({', '.join(kinds) or 'none'})",
                hint="pick one readiness probe: a file, a TCP address, an HTTP URL or a command",
            )
        kind = kinds[0]
        target = raw[kind]
        timeout = raw.get("timeout_s", 30.0)
        interval = raw.get("interval_s", 0.1)
        if not isinstance(target, str) or not target:
            raise OpError(Code.INVALID_ARGUMENT, f"the {kind} probe needs a non-empty string target")
        for what, value in (("timeout", timeout), ("interval", interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise OpError(Code.INVALID_ARGUMENT, f"the readiness {what} must be a positive number")
        return cls(kind, target, float(timeout), float(interval))


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    probe: ProbeSpec | None = None
    restart: str = "no"

    @staticmethod
    def check_name(name: object) -> str:
        if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
            raise OpError(Code.INVALID_ARGUMENT, f"invalid service name {name!r}", hint=f"use {SERVICE_NAME_RULE}")
        return name


@dataclass(frozen=True)
class ServiceRecord:
    """What `status` reports; persisted on every change."""

    name: str
    command: list[str]
    cwd: str
    state: str
    restart: str
    probe: dict[str, Any] | None
    pid: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    reason: str | None = None
    started_at: str | None = None
    ready_at: str | None = None
    stopped_at: str | None = None
    restarts: int = 0

    def moved_to(self, state: str, **changes: Any) -> ServiceRecord:
        if state not in _NEXT[self.state] and state != self.state:
            raise ValueError(f"a {self.state} service cannot become {state}")
        return dataclasses.replace(self, state=state, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def restart_delay(restarts: int) -> float:
    """Backoff before restart number `restarts` + 1: 0.1 s doubling to at most 5 s."""
    return float(min(5.0, 0.1 * 2.0 ** min(restarts, 6)))


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "always":
        return True
    return policy == "on-failure" and exit_code != 0
