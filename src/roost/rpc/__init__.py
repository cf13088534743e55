"""Host-side access to the guest agent over any byte stream."""

from roost.rpc.client import AgentClient, Reply
from roost.rpc.connect import connect_unix, open_unix

__all__ = ["AgentClient", "Reply", "connect_unix", "open_unix"]
