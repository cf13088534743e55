"""Host-side access to the guest agent over any byte stream."""

from roost.rpc.client import AgentClient, CallStream, Reply
from roost.rpc.connect import connect_unix, open_unix
from roost.rpc.records import RecordStream

__all__ = ["AgentClient", "CallStream", "RecordStream", "Reply", "connect_unix", "open_unix"]
