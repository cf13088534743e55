"""The agent's operation table: op name -> handler, imported on first use.

Handler modules load lazily so an idle agent stays small (tarfile alone
pulls in compression modules it may never need).

Imports: protocol, the agent's own modules and the standard library only.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from roost.agent.context import Reply, RequestContext
from roost.agent.paths import WorkspacePaths
from roost.protocol import Code, Op, OpError
from roost.protocol.identity import AgentIdentity

if TYPE_CHECKING:
    from roost.agent.staging import Staging


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
class AgentRuntime:
    """What every handler may use: where things live and the base environment."""

    paths: WorkspacePaths
    state_dir: str
    scratch_dir: str
    base_env: dict[str, str] = field(default_factory=dict)
    # Proves to the host which workspace this agent serves (None: no proof offered).
    identity: AgentIdentity | None = None
    shutdown: threading.Event = field(default_factory=threading.Event)
    inflight: InflightCalls = field(default_factory=InflightCalls)
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
        from roost.agent.staging import staging_dir  # imported here: shutil pulls in bz2/lzma

        return staging_dir(self.paths, self.scratch_dir, prefix)


Handler = Callable[[AgentRuntime, RequestContext], Reply]
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
T = TypeVar("T")

# op name -> "module:function" under roost.agent
_HANDLERS: dict[str, str] = {
    Op.PING: "roost.agent.ops:ping",
    Op.SHUTDOWN: "roost.agent.ops:shutdown",
    Op.EXEC: "roost.agent.execs:run_exec",
    Op.FILE_LIST: "roost.agent.files:list_files",
    Op.FILE_READ: "roost.agent.files:read_file",
    Op.FILE_WRITE: "roost.agent.files:write_file",
    Op.FILE_DELETE: "roost.agent.files:delete_file",
    Op.FILE_STAT: "roost.agent.files:stat_file",
    Op.ARCHIVE_IMPORT: "roost.agent.archive:import_archive",
    Op.ARCHIVE_EXPORT: "roost.agent.archive:export_archive",
    Op.PATCH_APPLY: "roost.agent.patch:apply_patch",
    Op.SHELL_OPEN: "roost.agent.shell_ops:open_shell",
    Op.SHELL_LIST: "roost.agent.shell_ops:list_shells",
    Op.SHELL_READ: "roost.agent.shell_ops:read_shell",
    Op.SHELL_WRITE: "roost.agent.shell_ops:write_shell",
    Op.SHELL_SIGNAL: "roost.agent.shell_ops:signal_shell",
    Op.SHELL_RESIZE: "roost.agent.shell_ops:resize_shell",
    Op.SHELL_CLOSE: "roost.agent.shell_ops:close_shell",
    Op.SHELL_ATTACH: "roost.agent.shell_ops:attach_shell",
    Op.SERVICE_START: "roost.agent.service_ops:start_service",
    Op.SERVICE_LIST: "roost.agent.service_ops:list_services",
    Op.SERVICE_STATUS: "roost.agent.service_ops:service_status",
    Op.SERVICE_LOGS: "roost.agent.service_ops:service_logs",
    Op.SERVICE_STOP: "roost.agent.service_ops:stop_service",
    Op.SNAPSHOT_CREATE: "roost.agent.snapshot_ops:create_snapshot",
    Op.SNAPSHOT_LIST: "roost.agent.snapshot_ops:list_snapshots",
    Op.SNAPSHOT_DELETE: "roost.agent.snapshot_ops:delete_snapshot",
    Op.DIFF: "roost.agent.snapshot_ops:diff",
    Op.RESET: "roost.agent.snapshot_ops:reset",
}


class OpTable:
    """Resolves op names to handlers and calls them with the runtime."""

    def __init__(self, runtime: AgentRuntime, handlers: dict[str, str] | None = None) -> None:
        self.runtime = runtime
        self._specs = dict(_HANDLERS if handlers is None else handlers)
        self._loaded: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._specs)

    def _resolve(self, op: str) -> Handler:
        with self._lock:
            handler = self._loaded.get(op)
            if handler is None:
                spec = self._specs.get(op)
                if spec is None:
                    raise OpError(Code.UNKNOWN_OP, f"unknown operation {op!r}", hint="roost and the agent differ")
                module_name, func_name = spec.split(":")
                handler = getattr(importlib.import_module(module_name), func_name)
                self._loaded[op] = handler
            return handler

    def call(self, ctx: RequestContext) -> Reply:
        """Run the op's handler; a full disk becomes `disk_full` here, once, for every op.

        Raises:
            OpError: the handler's own error, or disk_full.
        """
        handler = self._resolve(ctx.op)
        try:
            return handler(self.runtime, ctx)
        except OSError as exc:
            if exc.errno not in _DISK_FULL_ERRNOS:
                raise
            raise OpError(
                Code.DISK_FULL,
                f"{ctx.op}: the workspace's disk is full ({os.strerror(exc.errno)})",
                hint="free space in the workspace (delete files or snapshots), or delete workspaces you no longer need",
            ) from None


def ping(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    return Reply({"pong": True, "pid": os.getpid()})


def shutdown(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    """Stop services and close shells before answering, so their records say so."""
    runtime.shutdown.set()
    stopped = runtime.stop_children()
    return Reply({"stopping": True, "services_stopped": stopped["services"], "shells_closed": stopped["shells"]})
