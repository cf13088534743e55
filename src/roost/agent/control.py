"""The agent's own operations: ping, and shutdown (which winds its children down first).

Imports: the request core (`context`, `state`), protocol (with its op messages) and the standard library.
"""

from __future__ import annotations

import os

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.state import AgentState, Handler
from roost.protocol import Op
from roost.protocol.ops.agent import PingArgs, PingResult, ShutdownArgs, ShutdownResult


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


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.PING: ping,
    Op.SHUTDOWN: shutdown,
}
