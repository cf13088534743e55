"""Host-side access to the guest agent over any byte stream."""

from roost.rpc.client import AgentClient, AgentReply, CallStream
from roost.rpc.connect import connect_unix, open_unix
from roost.rpc.records import RecordStream

__all__ = ["AgentClient", "AgentReply", "CallStream", "RecordStream", "connect_unix", "open_unix"]
