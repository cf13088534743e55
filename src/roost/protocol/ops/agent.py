"""Messages of the agent's own ops: ping and shutdown.

Imports: this package's `message`, protocol's `messages`; standard library only.
"""

from __future__ import annotations

from roost.protocol.messages import Op
from roost.protocol.ops.message import Message, OpMessages, message, wire

__all__ = ["MESSAGES", "PingArgs", "PingResult", "ShutdownArgs", "ShutdownResult"]


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


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.PING: OpMessages(PingArgs, PingResult),
    Op.SHUTDOWN: OpMessages(ShutdownArgs, ShutdownResult),
}
