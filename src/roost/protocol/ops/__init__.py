"""Typed op messages: one frozen dataclass per op's arguments, per op's result and per streamed record.

The host builds argument messages and reads result messages; the agent
reads the arguments and builds the results; both check them the same way,
here (`message.Message`). `table.OP_TABLE` maps each op to its types.

Standard library only, no I/O: the guest agent imports it.
"""

from roost.protocol.ops.message import Message, invalid, wire
from roost.protocol.ops.table import OP_TABLE, OpMessages

__all__ = ["OP_TABLE", "Message", "OpMessages", "invalid", "wire"]
