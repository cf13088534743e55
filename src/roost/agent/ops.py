"""The agent's operation table: op name -> handler, imported on first use.

Handler modules load lazily so an idle agent stays small (tarfile alone
pulls in compression modules it may never need).

Imports: protocol, the agent's own modules and the standard library only.
"""

from __future__ import annotations

import errno
import importlib
import os
import threading
from collections.abc import Callable

from roost.agent.context import Reply, RequestContext
from roost.agent.runtime import AgentRuntime
from roost.protocol import Code, Op, OpError

Handler = Callable[[AgentRuntime, RequestContext], Reply]
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

# op name -> "module:function" under roost.agent
_HANDLERS: dict[str, str] = {
    Op.PING: "roost.agent.ops:ping",
    Op.SHUTDOWN: "roost.agent.ops:shutdown",
    Op.EXEC: "roost.agent.execs.handlers:run_exec",
    Op.FILE_LIST: "roost.agent.files.handlers:list_files",
    Op.FILE_READ: "roost.agent.files.handlers:read_file",
    Op.FILE_WRITE: "roost.agent.files.handlers:write_file",
    Op.FILE_DELETE: "roost.agent.files.handlers:delete_file",
    Op.FILE_STAT: "roost.agent.files.handlers:stat_file",
    Op.ARCHIVE_IMPORT: "roost.agent.files.archive:import_archive",
    Op.ARCHIVE_EXPORT: "roost.agent.files.archive:export_archive",
    Op.PATCH_APPLY: "roost.agent.files.patch:apply_patch",
    Op.SHELL_OPEN: "roost.agent.shells.handlers:open_shell",
    Op.SHELL_LIST: "roost.agent.shells.handlers:list_shells",
    Op.SHELL_READ: "roost.agent.shells.handlers:read_shell",
    Op.SHELL_WRITE: "roost.agent.shells.handlers:write_shell",
    Op.SHELL_SIGNAL: "roost.agent.shells.handlers:signal_shell",
    Op.SHELL_RESIZE: "roost.agent.shells.handlers:resize_shell",
    Op.SHELL_CLOSE: "roost.agent.shells.handlers:close_shell",
    Op.SHELL_ATTACH: "roost.agent.shells.handlers:attach_shell",
    Op.SERVICE_START: "roost.agent.services.handlers:start_service",
    Op.SERVICE_LIST: "roost.agent.services.handlers:list_services",
    Op.SERVICE_STATUS: "roost.agent.services.handlers:service_status",
    Op.SERVICE_LOGS: "roost.agent.services.handlers:service_logs",
    Op.SERVICE_STOP: "roost.agent.services.handlers:stop_service",
    Op.SNAPSHOT_CREATE: "roost.agent.snapshots.handlers:create_snapshot",
    Op.SNAPSHOT_LIST: "roost.agent.snapshots.handlers:list_snapshots",
    Op.SNAPSHOT_DELETE: "roost.agent.snapshots.handlers:delete_snapshot",
    Op.DIFF: "roost.agent.snapshots.handlers:diff",
    Op.RESET: "roost.agent.snapshots.handlers:reset",
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
