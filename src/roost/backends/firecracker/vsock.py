"""The host's way to the guest agent: Firecracker's host-side vsock Unix socket.

Firecracker binds a Unix socket for the guest's vsock device. A host process
connects to it, writes `CONNECT <port>\\n`, and Firecracker answers
`OK <host port>\\n` once a guest process accepted on that vsock port; when
nothing listens there yet (the guest is still booting) it closes the
connection instead. `VsockConnector` retries that handshake until a deadline
and hands back the socket as the agent's byte stream, keeping any bytes that
arrived after the OK line.

Imports: errors, protocol.addresses, rpc and the standard library.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from roost.errors import CHECK_WORKSPACE, AgentError, BackendError, ProtocolError
from roost.protocol.addresses import unix_sockaddr
from roost.protocol.identity import AgentIdentity
from roost.rpc import AgentClient

__all__ = ["HandshakenStream", "VsockConnector"]

MAX_REPLY_LINE = 64
ATTEMPT_TIMEOUT = 1.0
FIRST_RETRY_DELAY = 0.005
MAX_RETRY_DELAY = 0.01  # a booting guest's agent is reached within 10 ms of listening

VmmProbe = Callable[[], str | None]
"""Returns None while the VMM runs, else why it does not (so a wait fails fast)."""


class HandshakenStream:
    """The connected socket after `OK`, replaying bytes read past the OK line first."""

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self._sock = sock
        self._pending = pending

    def recv_into(self, buffer: memoryview) -> int:
        if self._pending:
            count = min(len(buffer), len(self._pending))
            buffer[:count] = self._pending[:count]
            self._pending = self._pending[count:]
            return count
        return self._sock.recv_into(buffer)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()


class _NotYet(Exception):
    """One attempt failed in a way that booting explains; try again."""


class VsockConnector:
    """Connects to guest vsock `port` through Firecracker's host-side socket `uds_path`."""

    def __init__(self, uds_path: str | os.PathLike[str], port: int, *, vmm_probe: VmmProbe | None = None) -> None:
        self.uds_path = Path(uds_path)
        self.port = port
        self._vmm_probe = vmm_probe

    def _attempt(self, timeout: float) -> HandshakenStream:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(timeout, 0.001))
        address, dir_fd = unix_sockaddr(str(self.uds_path))
        try:
            sock.connect(address)
            sock.sendall(f"CONNECT {self.port}\n".encode())
            received = b""
            while b"\n" not in received:
                chunk = sock.recv(MAX_REPLY_LINE)
                if not chunk:
                    raise _NotYet("the guest closed the connection (nothing listens on the port yet)")
                received += chunk
                if len(received) > MAX_REPLY_LINE and b"\n" not in received:
                    raise ProtocolError(f"the vsock socket answered CONNECT with {received[:32]!r}...")
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError) as exc:
            sock.close()
            raise _NotYet(exc.strerror or type(exc).__name__) from None
        except TimeoutError:
            sock.close()
            raise _NotYet("no answer to CONNECT") from None
        except BaseException:
            sock.close()
            raise
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        line, _, rest = received.partition(b"\n")
        if not line.startswith(b"OK "):
            sock.close()
            raise ProtocolError(f"the vsock socket answered CONNECT {self.port} with {line[:MAX_REPLY_LINE]!r}")
        sock.settimeout(None)
        return HandshakenStream(sock, rest)

    def _until(self, deadline: float) -> tuple[HandshakenStream | None, str, bool]:
        """The stream; or None, the last reason, and whether the VMM is gone, once `deadline` (monotonic) passed."""
        delay = FIRST_RETRY_DELAY
        while True:
            try:
                return self._attempt(min(deadline - time.monotonic(), ATTEMPT_TIMEOUT)), "", False
            except _NotYet as exc:
                reason = str(exc)
            dead = self._vmm_probe() if self._vmm_probe is not None else None
            if dead is not None:
                return None, dead, True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, reason, False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def wait_for_agent(self, boot_timeout: float) -> HandshakenStream:
        """Retry until the freshly booted guest's agent accepts on the port.

        Raises:
            BackendError: boot_timeout when `boot_timeout` seconds pass first;
                vmm_died when the VMM exits while we wait.
            ProtocolError: the socket answered something other than `OK`.
        """
        stream, reason, dead = self._until(time.monotonic() + boot_timeout)
        if dead:
            raise BackendError(
                reason, code="vmm_died", hint="firecracker.log in the workspace directory has its output"
            )
        if stream is None:
            raise BackendError(
                f"the guest agent did not answer on vsock port {self.port} within {boot_timeout:g}s of boot ({reason})",
                code="boot_timeout",
                hint="the guest may not have booted: look at firecracker.log (the guest console) in the workspace dir",
            )
        return stream

    def connect(self, timeout: float) -> HandshakenStream:
        """Open a stream to the agent of a running guest.

        Raises:
            AgentError: agent_unreachable when it does not answer within `timeout` seconds
                or the VMM is gone.
            ProtocolError: the socket answered something other than `OK`.
        """
        stream, reason, dead = self._until(time.monotonic() + timeout)
        if stream is None:
            raise AgentError(
                reason if dead else f"the workspace agent is not answering on vsock port {self.port} ({reason})",
                code="agent_unreachable",
                remedy=CHECK_WORKSPACE,
            )
        return stream

    def open_client(self, timeout: float, identity: AgentIdentity | None = None) -> AgentClient:
        """`connect`, then the protocol handshake (in which the agent proves `identity`).

        Raises:
            AgentError: agent_unreachable, agent_disconnected, agent_identity_mismatch.
            ProtocolError: a bad handshake.
        """
        return AgentClient(self.connect(timeout), identity=identity)
