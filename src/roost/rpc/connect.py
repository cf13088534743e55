"""Opening byte streams to an agent: Unix sockets, with a readiness deadline.

Imports: protocol, errors, rpc.client and the standard library only.
"""

from __future__ import annotations

import os
import socket
import time

from roost.errors import CHECK_WORKSPACE, AgentError
from roost.protocol.addresses import unix_sockaddr
from roost.protocol.identity import AgentIdentity
from roost.rpc.client import AgentClient


def open_unix(path: str, *, timeout: float = 0.0, poll: float = 0.005) -> socket.socket:
    """Connect to a Unix socket, retrying until `timeout` seconds have passed.

    Raises:
        AgentError: agent_unreachable when nothing answers in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, dir_fd = unix_sockaddr(path)
        try:
            sock.connect(address)
            return sock
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise AgentError(
                    f"the workspace agent is not answering ({exc.strerror})",
                    code="agent_unreachable",
                    remedy=CHECK_WORKSPACE,
                ) from None
            time.sleep(poll)
        finally:
            if dir_fd is not None:
                os.close(dir_fd)


def connect_unix(path: str, *, timeout: float = 0.0, identity: AgentIdentity | None = None) -> AgentClient:
    """Connect and handshake with the agent listening on `path`; with `identity`, it must prove it.

    Raises:
        AgentError: agent_unreachable, agent_disconnected, agent_identity_mismatch.
    """
    return AgentClient(open_unix(path, timeout=timeout), identity=identity)
