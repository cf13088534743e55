"""What every operation handler is given: where things live, the base environment, long-lived parts.

`AgentState` is made once by the entry point and handed to every
`Handler`; `InflightCalls` lets shutdown cancel and drain the calls running.

Imports: the request context, the agent's `fs` and `system` layers, protocol and the standard library only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.system.machine import OsMachine
from roost.agent.system.processes import OsProcesses
from roost.agent.system.workers import Workers
from roost.protocol.identity import AgentIdentity

if TYPE_CHECKING:
    from roost.agent.fs.staging import Staging

T = TypeVar("T")


class InflightCalls:
    """Every call running in this agent, so shutdown can cancel and drain them."""

    def __init__(self) -> None:
        self._events: set[threading.Event] = set()
        self._cond = threading.Condition()

    def add(self, cancelled: threading.Event) -> None:
        with self._cond:
            self._events.add(cancelled)

    def remove(self, cancelled: threading.Event) -> None:
        with self._cond:
            self._events.discard(cancelled)
            self._cond.notify_all()

    def cancel_all(self) -> None:
        with self._cond:
            for event in self._events:
                event.set()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._events, timeout)


@dataclass
class AgentState:
    """What every handler may use: where things live and the base environment."""

    paths: WorkspacePaths
    state_dir: str
    scratch_dir: str
    base_env: dict[str, str] = field(default_factory=dict)
    # Proves to the host which workspace this agent serves (None: no proof offered).
    identity: AgentIdentity | None = None
    shutdown: threading.Event = field(default_factory=threading.Event)
    inflight: InflightCalls = field(default_factory=InflightCalls)
    # The one seam to processes: execs, shells and services start and signal theirs through it.
    processes: OsProcesses = field(default_factory=OsProcesses)
    # Entropy, clock, hostname and machine-id: renewed once after a restore from a template.
    machine: OsMachine = field(default_factory=OsMachine)
    # The threads requests run on, kept between requests.
    workers: Workers = field(default_factory=Workers)
    _parts: dict[str, Any] = field(default_factory=dict)
    _parts_lock: threading.Lock = field(default_factory=threading.Lock)

    def existing_part(self, name: str) -> Any | None:
        """A component if it was ever made (shutdown only tidies what exists)."""
        with self._parts_lock:
            return self._parts.get(name)

    def part(self, name: str, factory: Callable[[], T]) -> T:
        """A long-lived component (shell registry, service supervisor), made on first use."""
        with self._parts_lock:
            if name not in self._parts:
                self._parts[name] = factory()
            return cast(T, self._parts[name])

    def stop_children(self) -> dict[str, list[str]]:
        """Stop the services and close the shells this agent started; say which.

        Idempotent: what is already over is left alone, so a shutdown op and
        the exit path may both call it.
        """
        stopped: dict[str, list[str]] = {"services": [], "shells": []}
        for name, method in (("services", "stop_all"), ("shells", "close_all")):
            part = self.existing_part(name)
            if part is None:
                continue
            try:
                stopped[name] = list(getattr(part, method)())
            except Exception:  # shutting down: one failure must not keep the rest running
                logging.getLogger("roost.agent").exception("stopping %s failed", name)
        return stopped

    def staging_dir(self, prefix: str) -> AbstractContextManager[Staging]:
        """A private directory on the workspace's own mount (renames from it are atomic), removed afterwards."""
        from roost.agent.fs.staging import staging_dir  # imported here: shutil pulls in bz2/lzma

        return staging_dir(self.paths, self.scratch_dir, prefix)


# An operation: the agent, the op's argument message and its request in, the final answer out (or
# OpError raised). The op table decodes the argument message (the family's `MESSAGES` in `roost.protocol.ops`).
Handler = Callable[[AgentState, Any, RequestContext], HandlerResult]
