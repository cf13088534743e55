"""The agent's own operations: ping, shutdown (which winds its children down first), and stats.

Imports: the request core (`context`, `state`), the `system` layer's usage, protocol (with its op messages) and the standard library.
"""

from __future__ import annotations

import os

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.state import AgentState, Handler
from roost.agent.system.usage import disk_used, filesystem_used, system_usage, tree_usage
from roost.protocol import Op
from roost.protocol.ops.agent import PingArgs, PingResult, ShutdownArgs, ShutdownResult, StatsArgs, StatsResult


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


def stats(agent: AgentState, args: StatsArgs, ctx: RequestContext) -> HandlerResult:
    """What the workspace uses now (see `roost.agent.system.usage`)."""
    usage = system_usage() if args.system else tree_usage(os.getpid())
    result = StatsResult(
        cpu_seconds=round(usage.cpu_seconds, 3),
        memory_bytes=usage.memory_bytes,
        memory_peak_bytes=usage.memory_peak_bytes,
        pids=usage.pids,
        workspace_bytes=disk_used(agent.paths.root_fd()),
        filesystem_bytes=filesystem_used("/") if args.system else None,
    )
    return HandlerResult(result)


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.PING: ping,
    Op.SHUTDOWN: shutdown,
    Op.STATS: stats,
}
