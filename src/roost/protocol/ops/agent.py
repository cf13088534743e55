"""Messages of the agent's own ops: ping, shutdown and stats.

Imports: this package's `message`, protocol's `messages`; standard library only.
"""

from __future__ import annotations

from roost.protocol.messages import Op
from roost.protocol.ops.message import Message, OpMessages, message, wire

__all__ = ["MESSAGES", "PingArgs", "PingResult", "ShutdownArgs", "ShutdownResult", "StatsArgs", "StatsResult"]


@message
class PingArgs(Message):
    OP = Op.PING


@message
class PingResult(Message):
    """The agent is there: its process id."""

    pong: bool = wire()
    pid: int = wire(minimum=1)


@message
class ShutdownArgs(Message):
    OP = Op.SHUTDOWN


@message
class ShutdownResult(Message):
    """The agent is stopping: the services it stopped and the shells it closed first."""

    stopping: bool = wire()
    services_stopped: tuple[str, ...] = wire(())
    shells_closed: tuple[str, ...] = wire(())


@message
class StatsArgs(Message):
    """What the workspace uses: of the whole system the agent runs in (`system`: a VM of its own), or of
    the agent's process tree."""

    OP = Op.STATS
    system: bool = wire(False)


@message
class StatsResult(Message):
    """CPU time, memory now and at its peak (None: not known in this view), processes, the bytes
    allocated under /workspace, and in use on the system's root file system (None: not asked for)."""

    cpu_seconds: float = wire(minimum=0)
    memory_bytes: int = wire(minimum=0)
    pids: int = wire(minimum=0)
    workspace_bytes: int = wire(minimum=0)
    memory_peak_bytes: int | None = wire(None, minimum=0)
    filesystem_bytes: int | None = wire(None, minimum=0)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.PING: OpMessages(PingArgs, PingResult),
    Op.SHUTDOWN: OpMessages(ShutdownArgs, ShutdownResult),
    Op.STATS: OpMessages(StatsArgs, StatsResult),
}
