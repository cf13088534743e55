"""The agent's operation table: which module serves each op, and calling its handler.

Each operation package registers the ops it serves in its handler module's
`HANDLERS`. The table below routes every op to a loader of that module and
of its op messages' family (`roost.protocol.ops.<family>.MESSAGES`): real
imports (the import graph sees them) made on the op's first call, so an
idle agent stays small (tarfile alone pulls in compression modules it may
never need, and each family's message classes cost milliseconds to build)
and starts fast.

Imports: the request core (`context`, `state`), the operation packages'
handler modules (lazily, in the loaders), protocol (with its op messages)
and the standard library. Never the server.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError

if TYPE_CHECKING:  # messages load with their family, on its first call (or the warm-up), never at start
    from roost.protocol.ops import OpMessages

Handlers = Mapping[str, Handler]
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class Route:
    """What serves a family of ops: its handlers and their messages."""

    handlers: Handlers
    messages: Mapping[str, OpMessages]


# The loaders: each imports one handler module and its messages, the first time one of its ops is called.
def _agent_route() -> Route:
    from roost.agent import control
    from roost.protocol.ops import agent

    return Route(control.HANDLERS, agent.MESSAGES)


def _exec_route() -> Route:
    from roost.agent.execs import handlers
    from roost.protocol.ops import execs

    return Route(handlers.HANDLERS, execs.MESSAGES)


def _file_route() -> Route:
    from roost.agent.files import handlers
    from roost.protocol.ops import files

    return Route(handlers.HANDLERS, files.MESSAGES)


def _archive_route() -> Route:
    from roost.agent.files import archive
    from roost.protocol.ops import transfer

    return Route(archive.HANDLERS, transfer.MESSAGES)


def _patch_route() -> Route:
    from roost.agent.files import patch
    from roost.protocol.ops import transfer

    return Route(patch.HANDLERS, transfer.MESSAGES)


def _shell_route() -> Route:
    from roost.agent.shells import handlers
    from roost.protocol.ops import shells

    return Route(handlers.HANDLERS, shells.MESSAGES)


def _service_route() -> Route:
    from roost.agent.services import handlers
    from roost.protocol.ops import services

    return Route(handlers.HANDLERS, services.MESSAGES)


def _snapshot_route() -> Route:
    from roost.agent.snapshots import handlers
    from roost.protocol.ops import snapshots

    return Route(handlers.HANDLERS, snapshots.MESSAGES)


Loader = Callable[[], Route]
# Every op this agent serves (the HELLO lists them without loading a handler module) and its loader.
ROUTES: dict[str, Loader] = {
    Op.PING: _agent_route,
    Op.SHUTDOWN: _agent_route,
    Op.STATS: _agent_route,
    Op.RESTORED: _agent_route,
    Op.EXEC: _exec_route,
    Op.FILE_LIST: _file_route,
    Op.FILE_READ: _file_route,
    Op.FILE_WRITE: _file_route,
    Op.FILE_DELETE: _file_route,
    Op.FILE_STAT: _file_route,
    Op.ARCHIVE_IMPORT: _archive_route,
    Op.ARCHIVE_EXPORT: _archive_route,
    Op.PATCH_APPLY: _patch_route,
    Op.SHELL_OPEN: _shell_route,
    Op.SHELL_LIST: _shell_route,
    Op.SHELL_READ: _shell_route,
    Op.SHELL_WRITE: _shell_route,
    Op.SHELL_SIGNAL: _shell_route,
    Op.SHELL_RESIZE: _shell_route,
    Op.SHELL_CLOSE: _shell_route,
    Op.SHELL_ATTACH: _shell_route,
    Op.SERVICE_START: _service_route,
    Op.SERVICE_LIST: _service_route,
    Op.SERVICE_STATUS: _service_route,
    Op.SERVICE_LOGS: _service_route,
    Op.SERVICE_STOP: _service_route,
    Op.SNAPSHOT_CREATE: _snapshot_route,
    Op.SNAPSHOT_LIST: _snapshot_route,
    Op.SNAPSHOT_DELETE: _snapshot_route,
    Op.SNAPSHOT_SEND: _snapshot_route,
    Op.SNAPSHOT_RECEIVE: _snapshot_route,
    Op.DIFF: _snapshot_route,
    Op.RESET: _snapshot_route,
}


# What a new workspace's host calls first (the baseline snapshot of every create and reset): loaded
# while the agent waits for its first request, so that request does not pay for the import.
WARM_UP = (Op.SNAPSHOT_CREATE,)


class OpTable:
    """Resolves op names to handlers and calls them with the agent."""

    def __init__(
        self, agent: AgentState, handlers: Handlers | None = None, messages: Mapping[str, OpMessages] | None = None
    ) -> None:
        """`handlers` and their `messages` (tests): serve exactly these, in place of the agent's own ops."""
        self.agent = agent
        if handlers is None:
            self._routes: Mapping[str, Loader] = ROUTES
        else:
            route = Route(handlers, messages or {})
            self._routes = {op: lambda: route for op in handlers}
        self._loaded: dict[str, tuple[Handler, OpMessages]] = {}
        self._lock = threading.Lock()
        self._warming = False

    def names(self) -> list[str]:
        return list(self._routes)

    def warm_up(self) -> None:
        """Load the `WARM_UP` families in the background, once (a request for one meanwhile waits for it)."""
        with self._lock:
            if self._warming:
                return
            self._warming = True
        wanted = [op for op in WARM_UP if op in self._routes]
        threading.Thread(target=lambda: [self._resolve(op) for op in wanted], name="warm-up", daemon=True).start()

    def _resolve(self, op: str) -> tuple[Handler, OpMessages]:
        with self._lock:
            found = self._loaded.get(op)
            if found is None:
                load = self._routes.get(op)
                if load is None:
                    raise OpError(Code.UNKNOWN_OP, f"unknown operation {op!r}", hint="roost and the agent differ")
                route = load()
                found = self._loaded[op] = (route.handlers[op], route.messages[op])
            return found

    def call(self, ctx: RequestContext) -> HandlerResult:
        """Decode the op's argument message and run its handler; a full disk becomes `disk_full` here, once.

        Raises:
            OpError: invalid_argument for arguments that do not make the op's message, the handler's
                own error, or disk_full.
        """
        handler, messages = self._resolve(ctx.op)
        args = messages.args.from_wire(ctx.args)
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
