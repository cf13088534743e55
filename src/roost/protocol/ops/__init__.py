"""Typed op messages: one frozen dataclass (`@message`) per op's arguments, per op's result and per streamed record.

The host builds argument messages and reads result messages; the agent
reads the arguments and builds the results; both check them the same way,
here (`message.Message`). Each family module (agent, execs, files,
transfer, shells, services, snapshots) names its ops' messages in
`MESSAGES`; `table.OP_TABLE` gathers them all. Importing this package
builds none of them: the agent loads a family when one of its ops is
first called.

Standard library only, no I/O: the guest agent imports it.
"""

from roost.protocol.ops.message import Message, OpMessages, invalid, message, wire

__all__ = ["Message", "OpMessages", "invalid", "message", "wire"]
