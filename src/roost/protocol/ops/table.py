"""The op table: every op's name and the message types of its arguments and its result.

Each family module names its own ops' messages (`MESSAGES`); this gathers
them. The host and the tests walk the whole table; the agent takes a
family's messages with its handlers, when one of its ops is first called,
so an idle agent never builds the message classes it is not asked for.

Imports: every message module of this package; standard library only.
"""

from __future__ import annotations

from roost.protocol.ops import agent, execs, files, services, shells, snapshots, transfer
from roost.protocol.ops.message import OpMessages

__all__ = ["OP_TABLE"]

OP_TABLE: dict[str, OpMessages] = {
    **agent.MESSAGES,
    **execs.MESSAGES,
    **files.MESSAGES,
    **transfer.MESSAGES,
    **shells.MESSAGES,
    **services.MESSAGES,
    **snapshots.MESSAGES,
}
