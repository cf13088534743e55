"""What the mock and sandbox backends share: an agent process on the host's
process table, reached through a Unix socket that only the host can reach.

The host binds and listens on `<ws_dir>/agent.sock` itself (the workspace
directory is roost's, 0700, and never visible inside a workspace) and hands
the listening socket to the agent as an inherited descriptor, together with
the workspace's identity key on another descriptor. Nothing a workspace
does to its own files can move, replace or redirect that socket, and every
connection checks the agent's proof of identity (see protocol.identity).

A workspace's record keeps its agent's pid (`HostAgentBoot`). Connecting
fails fast once that agent is gone (no retries), health means "that process
is still our agent", and destroy kills the workspace's whole process tree.

Imports: backends.agent_keys, backends.base, backends.disk_usage, backends.processes, errors, models, protocol, rpc
and the standard library.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from roost.backends.agent_keys import identity_of
from roost.backends.base import CreateSpec, HostUsage
from roost.backends.disk_usage import allocated_bytes
from roost.backends.processes import is_alive, kill_tree, log_tail, reap, recorded_pid
from roost.errors import CHECK_WORKSPACE, AgentError, BackendError, RoostError, operator_remedy
from roost.models import Protection
from roost.protocol import Op
from roost.protocol.addresses import bind_private, unix_sockaddr
from roost.protocol.identity import AgentIdentity
from roost.rpc import AgentClient, connect_unix

SOCKET = "agent.sock"


@dataclass(frozen=True)
class HostAgentBoot:
    """What a workspace's record keeps of an agent that is a host process: whose it is, and its
    pid (None once stopped). Its socket is always `<ws_dir>/agent.sock`, never read from here."""

    workspace: str
    agent_pid: int | None

    def to_json(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "agent_pid": self.agent_pid}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> HostAgentBoot:
        """Raises: ValueError: `stored` names no workspace, or holds a pid that is not a number."""
        workspace, pid = stored.get("workspace"), stored.get("agent_pid")
        if not isinstance(workspace, str) or not workspace:
            raise ValueError("the agent's record names no workspace")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            raise ValueError(f"the agent's pid {pid!r} is not a number")
        return HostAgentBoot(workspace, pid)


AgentBootT = TypeVar("AgentBootT", bound=HostAgentBoot)


def bind_listener(ws_dir: Path) -> socket.socket:
    """A fresh listening socket at `<ws_dir>/agent.sock`, for its owner only."""
    path = str(ws_dir / SOCKET)
    try:
        os.unlink(path)  # a restart must not mistake the old socket for the new agent
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        bind_private(listener, path)  # in the workspace directory (0700)
        listener.listen(64)
    except OSError:
        listener.close()
        raise
    return listener


def key_pipe(identity: AgentIdentity) -> int:
    """The read end of a pipe holding the key (the agent reads it once)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, identity.key)
    finally:
        os.close(write_fd)
    return read_fd


def await_agent(socket_path: Path, pid: int, log_path: Path, deadline: float, identity: AgentIdentity) -> None:
    """Wait until the agent answers a handshake with its proof, failing fast if `pid` dies.

    Raises:
        BackendError: agent_start_failed with the last line the launch logged.
    """
    end = time.monotonic() + deadline
    while True:
        remaining = end - time.monotonic()
        if not is_alive(pid):
            reap(pid)
            raise BackendError(
                f"the workspace failed to start: {log_tail(log_path) or 'no output'}",
                code="agent_start_failed",
                remedy=operator_remedy("see what this host lacks", "doctor"),
            )
        if remaining <= 0:
            raise BackendError(
                f"the agent did not start within {deadline:.0f}s",
                code="agent_start_failed",
                remedy=operator_remedy("see what this host lacks", "doctor"),
            )
        try:
            # The socket exists before the agent runs: a connect lands in the
            # backlog and the handshake waits for the agent to accept.
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address, dir_fd = unix_sockaddr(str(socket_path))
            try:
                sock.settimeout(min(remaining, 1.0))
                sock.connect(address)
            finally:
                if dir_fd is not None:
                    os.close(dir_fd)
            client = AgentClient(sock, identity=identity)
        except (OSError, RoostError) as exc:
            if isinstance(exc, AgentError) and exc.code == "agent_identity_mismatch":
                raise BackendError(exc.message, code="agent_start_failed") from None
            continue
        client.close()
        return


def live_agent(boot: HostAgentBoot | None) -> int | None:
    """The recorded agent's pid while that process is still the workspace's agent."""
    return None if boot is None else recorded_pid(boot.workspace, boot.agent_pid)


class HostAgentBackend(Generic[AgentBootT]):
    """Base of backends whose agent is a host process; `gone` names it in messages.

    Subclasses implement `create` and `read_boot`; starting a stopped workspace
    is creating it again over the directories (and overlay) it kept.
    """

    gone = "the agent process is gone"

    def create(self, ws_dir: Path, spec: CreateSpec) -> AgentBootT:
        raise NotImplementedError

    def stop(self, ws_dir: Path, boot: AgentBootT) -> AgentBootT:
        """Ask the agent to shut down (it stops services and closes shells), then make sure."""
        if live_agent(boot) is not None:
            try:
                with self.connect(ws_dir, boot, timeout=1.0) as client:
                    client.call(Op.SHUTDOWN)
            except RoostError:
                pass  # it is going away either way
        self.destroy(ws_dir, boot.workspace, boot)
        return dataclasses.replace(boot, agent_pid=None)

    def start(self, ws_dir: Path, spec: CreateSpec, boot: AgentBootT) -> AgentBootT:
        return self.create(ws_dir, spec)

    def connect(self, ws_dir: Path, boot: AgentBootT | None, *, timeout: float) -> AgentClient:
        if boot is None or live_agent(boot) is None:
            raise AgentError(
                f"the workspace is not running ({self.gone})", code="agent_unreachable", remedy=CHECK_WORKSPACE
            )
        identity = identity_of(ws_dir, boot.workspace)
        # The socket's place is roost's own directory: never a path the record
        # (or the workspace) could point elsewhere.
        return connect_unix(str(ws_dir / SOCKET), timeout=timeout, identity=identity)

    def health(self, ws_dir: Path, boot: AgentBootT | None) -> str | None:
        if live_agent(boot) is None:
            return self.gone
        if not (ws_dir / SOCKET).exists():
            return "the agent socket is missing"
        return None

    def protections(self, boot: AgentBootT | None) -> tuple[Protection, ...]:
        return ()

    def usage(self, ws_dir: Path, boot: AgentBootT) -> HostUsage:
        """The disk the workspace's directory takes; its processes are counted by its agent."""
        return HostUsage("process tree", disk_bytes=allocated_bytes(ws_dir))

    def rootfs_id_offset(self, boot: AgentBootT | None) -> tuple[int, int]:
        return 0, 0

    def discard_files(self, ws_dir: Path, boot: AgentBootT | None) -> None:
        return None  # the agent runs as roost's user: its files are roost's to delete

    def network_namespace_pid(self, boot: AgentBootT | None) -> int | None:
        return None  # a host process shares the host's network: nothing to attach to

    def destroy(self, ws_dir: Path, ws_id: str, boot: AgentBootT | None) -> None:
        try:
            # Every process of the workspace carries its marker; killing the
            # agent's tree (and a sandbox's pid-namespace init) takes the rest.
            kill_tree(ws_id, live_agent(boot))
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None
