"""The agent's operation table: which module serves each op, and calling its handler.

Each operation package registers the ops it serves in its handler module's
`HANDLERS`. The table below routes every op to a loader of that module: a
real import (the import graph sees it) made on the op's first call, so an
idle agent stays small (tarfile alone pulls in compression modules it may
never need) and starts fast.

Imports: the request core (`context`, `state`), the operation packages'
handler modules (lazily, in the loaders), protocol (with its op messages)
and the standard library. Never the server.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Mapping

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.ops import OP_TABLE, OpMessages
from roost.protocol.ops.agent import PingArgs, PingResult, ShutdownArgs, ShutdownResult

Handlers = Mapping[str, Handler]
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def ping(agent: AgentState, args: PingArgs, ctx: RequestContext) -> HandlerResult:
    return HandlerResult(PingResult(pong=True, pid=os.getpid()))


def shutdown(agent: AgentState, args: ShutdownArgs, ctx: RequestContext) -> HandlerResult:
    """Stop services and close shells before answering, so their records say so."""
    agent.shutdown.set()
    stopped = agent.stop_children()
    result = ShutdownResult(
        stopping=True, services_stopped=tuple(stopped["services"]), shells_closed=tuple(stopped["shells"])
    )
    return HandlerResult(result)


# The loaders: each imports one handler module, the first time one of its ops is called.
def _agent_handlers() -> Handlers:
    return {Op.PING: ping, Op.SHUTDOWN: shutdown}


def _exec_handlers() -> Handlers:
    from roost.agent.execs import handlers

    return handlers.HANDLERS


def _file_handlers() -> Handlers:
    from roost.agent.files import handlers

    return handlers.HANDLERS


def _archive_handlers() -> Handlers:
    from roost.agent.files import archive

    return archive.HANDLERS


def _patch_handlers() -> Handlers:
    from roost.agent.files import patch

    return patch.HANDLERS


def _shell_handlers() -> Handlers:
    from roost.agent.shells import handlers

    return handlers.HANDLERS


def _service_handlers() -> Handlers:
    from roost.agent.services import handlers

    return handlers.HANDLERS


def _snapshot_handlers() -> Handlers:
    from roost.agent.snapshots import handlers

    return handlers.HANDLERS


Loader = Callable[[], Handlers]
# Every op this agent serves (the HELLO lists them without loading a handler module) and its loader.
ROUTES: dict[str, Loader] = {
    Op.PING: _agent_handlers,
    Op.SHUTDOWN: _agent_handlers,
    Op.EXEC: _exec_handlers,
    Op.FILE_LIST: _file_handlers,
    Op.FILE_READ: _file_handlers,
    Op.FILE_WRITE: _file_handlers,
    Op.FILE_DELETE: _file_handlers,
    Op.FILE_STAT: _file_handlers,
    Op.ARCHIVE_IMPORT: _archive_handlers,
    Op.ARCHIVE_EXPORT: _archive_handlers,
    Op.PATCH_APPLY: _patch_handlers,
    Op.SHELL_OPEN: _shell_handlers,
    Op.SHELL_LIST: _shell_handlers,
    Op.SHELL_READ: _shell_handlers,
    Op.SHELL_WRITE: _shell_handlers,
    Op.SHELL_SIGNAL: _shell_handlers,
    Op.SHELL_RESIZE: _shell_handlers,
    Op.SHELL_CLOSE: _shell_handlers,
    Op.SHELL_ATTACH: _shell_handlers,
    Op.SERVICE_START: _service_handlers,
    Op.SERVICE_LIST: _service_handlers,
    Op.SERVICE_STATUS: _service_handlers,
    Op.SERVICE_LOGS: _service_handlers,
    Op.SERVICE_STOP: _service_handlers,
    Op.SNAPSHOT_CREATE: _snapshot_handlers,
    Op.SNAPSHOT_LIST: _snapshot_handlers,
    Op.SNAPSHOT_DELETE: _snapshot_handlers,
    Op.DIFF: _snapshot_handlers,
    Op.RESET: _snapshot_handlers,
}


class OpTable:
    """Resolves op names to handlers and calls them with the agent."""

    def __init__(
        self, agent: AgentState, handlers: Handlers | None = None, messages: Mapping[str, OpMessages] | None = None
    ) -> None:
        """`handlers` and their `messages` (tests): serve exactly these, in place of the agent's own ops."""
        self.agent = agent
        self._messages: Mapping[str, OpMessages] = OP_TABLE if messages is None else messages
        self._routes: Mapping[str, Loader] = ROUTES if handlers is None else {op: lambda: handlers for op in handlers}
        self._loaded: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._routes)

    def _resolve(self, op: str) -> Handler:
        with self._lock:
            handler = self._loaded.get(op)
            if handler is None:
                load = self._routes.get(op)
                if load is None:
                    raise OpError(Code.UNKNOWN_OP, f"unknown operation {op!r}", hint="roost and the agent differ")
                handler = self._loaded[op] = load()[op]
            return handler

    def call(self, ctx: RequestContext) -> HandlerResult:
        """Decode the op's argument message and run its handler; a full disk becomes `disk_full` here, once.

        Raises:
            OpError: invalid_argument for arguments that do not make the op's message, the handler's
                own error, or disk_full.
        """
        handler = self._resolve(ctx.op)
        args = self._messages[ctx.op].args.from_wire(ctx.args)
        try:
            return handler(self.agent, args, ctx)
        except OSError as exc:
            if exc.errno not in _DISK_FULL_ERRNOS:
                raise
            raise OpError(
                Code.DISK_FULL,
                f"{ctx.op}: the workspace's disk is full ({os.strerror(exc.errno)})",
                hint="free space in the workspace (delete files or snapshots), or delete workspaces you no longer need",
            ) from None
