"""Services as data: their specs, readiness probes, states and records.

A pure module: no processes, no I/O beyond (de)serialising records, so the
state machine can be read and tested on its own.

    starting --ready--> ready --exit--> exited | failed --restart--> starting
        \\--probe timeout / exit--> failed           any --stop--> stopped

Standard library and `roost.protocol` (the service messages) only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from roost.protocol.ops.services import ReadinessProbe, ServiceState

STARTING, READY, FAILED, EXITED, STOPPED = "starting", "ready", "failed", "exited", "stopped"
STATES = (STARTING, READY, FAILED, EXITED, STOPPED)
ACTIVE = (STARTING, READY)
_NEXT = {
    STARTING: {READY, FAILED, EXITED, STOPPED},
    READY: {FAILED, EXITED, STOPPED},
    FAILED: {STARTING, STOPPED},
    EXITED: {STARTING, STOPPED},
    STOPPED: {STARTING},
}


@dataclass(frozen=True)
class ProbeSpec:
    """How to tell a service is ready: one kind, with its target."""

    kind: str
    target: str
    timeout_s: float = 30.0
    interval_s: float = 0.1

    @classmethod
    def from_message(cls, probe: ReadinessProbe | None) -> ProbeSpec | None:
        """The spec of a probe as `service.start` gives it (its message checked it)."""
        if probe is None:
            return None
        return cls(probe.kind, probe.target, float(probe.timeout_s), float(probe.interval_s))


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    probe: ProbeSpec | None = None
    restart: str = "no"


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

    def to_state(self, log_tail: str | None = None) -> ServiceState:
        """The service as the agent reports it (`service.list` records, start, status and stop)."""
        return ServiceState(**{**self.to_dict(), "command": tuple(self.command), "log_tail": log_tail})

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
