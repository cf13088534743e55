"""The agent's own operations: ping, shutdown (which winds its children down first), stats, and
restored (a machine resumed from a template's snapshot becomes a new one).

Imports: the request core (`context`, `state`), the `system` layer's usage, protocol (with its op messages) and the standard library.
"""

from __future__ import annotations

import os

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.state import AgentState, Handler
from roost.agent.system.usage import disk_used, filesystem_used, system_usage, tree_usage
from roost.protocol import Code, Op, OpError
from roost.protocol.identity import AgentIdentity
from roost.protocol.ops.agent import (
    PingArgs,
    PingResult,
    RestoredArgs,
    RestoredResult,
    ShutdownArgs,
    ShutdownResult,
    StatsArgs,
    StatsResult,
)


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


def restored(agent: AgentState, args: RestoredArgs, ctx: RequestContext) -> HandlerResult:
    """Renew what every clone of a template shares, then prove the new workspace's identity from here on.

    The order matters: the pool is reseeded before anything could draw from it for this workspace,
    and the identity changes last, so a clone that could not renew itself still answers as the
    template (the host then discards it).

    Raises:
        OpError: restore_failed, naming the step (the clone must not be used).
    """
    machine = agent.machine
    steps = (
        ("credit fresh entropy", lambda: machine.add_entropy(bytes.fromhex(args.entropy_hex))),
        ("set the clock", lambda: machine.set_clock(args.unix_time_ns)),
        ("set the hostname", lambda: machine.set_hostname(args.hostname)),
        ("write the machine-id", lambda: machine.set_machine_id(args.machine_id)),
    )
    bits = 0
    for what, step in steps:
        try:
            done = step()
        except OSError as exc:
            raise OpError(
                Code.RESTORE_FAILED,
                f"the restored machine cannot {what}: {exc.strerror or exc}",
                hint="the clone is not a machine of its own; discard it and boot afresh",
            ) from None
        if isinstance(done, int):
            bits = done
    agent.identity = AgentIdentity(args.workspace_id, bytes.fromhex(args.key_hex))
    result = RestoredResult(
        entropy_bits=bits, hostname=args.hostname, machine_id=args.machine_id, workspace_id=args.workspace_id
    )
    return HandlerResult(result)


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.PING: ping,
    Op.SHUTDOWN: shutdown,
    Op.STATS: stats,
    Op.RESTORED: restored,
}
