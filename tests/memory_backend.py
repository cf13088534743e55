"""An in-memory backend for tests of the orchestration layer: the real agent, served in this process.

As httpx's `MockTransport` stands in for the network under a real client, `MemoryBackend` stands in
for a sandbox or VM under the real `Engine`: each workspace's agent is the guest agent's own code
(`AgentState` and its op table) in this process, and each connection to it is a socketpair whose
agent end a thread serves. No agent process, no socket on disk, no image; a create takes
milliseconds. What is hard to bring about with real processes is one call away:

- `crash(ws_id)`: the agent goes away as if killed: its connections break mid-call, it answers no
  more, and health says so (`agents[ws_id].ops.running(op)` tells when a call is under way);
- `fail(op, code)`: every call of `op` fails with `code`, as the agent would report it;
- `impersonate(ws_id)`: another agent (another workspace's identity) answers in its place;
- `create_error`: the next create fails before any agent starts.

Use it as `Engine(home, "memory", backends={"memory": MemoryBackend()})`.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection, agent_info
from roost.agent.state import AgentState
from roost.backends import Availability, CreateSpec, ImageKind, OfflineDisk, Protection
from roost.backends.base import HostUsage
from roost.errors import CHECK_WORKSPACE, AgentError, RoostError
from roost.protocol import OpError
from roost.protocol.identity import AgentIdentity, new_key
from roost.rpc import AgentClient

NAME = "memory"
IO_TIMEOUT = 10.0  # a connection that hears nothing for this long fails its test rather than hang it
CRASHED = "the in-memory agent crashed"


class WatchedOps(OpTable):
    """The agent's op table, failing the ops a test names with the codes it gives, and counting
    the calls of each op under way (so a test knows a call has reached the agent)."""

    def __init__(self, agent: AgentState, faults: dict[str, str]) -> None:
        super().__init__(agent)
        self._faults = faults
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def running(self, op: str) -> int:
        with self._lock:
            return self._running.get(op, 0)

    def call(self, ctx: RequestContext) -> HandlerResult:
        code = self._faults.get(ctx.op)
        if code is not None:
            raise OpError(code, f"{ctx.op} failed: a fault the test injected")
        with self._lock:
            self._running[ctx.op] = self._running.get(ctx.op, 0) + 1
        try:
            return super().call(ctx)
        finally:
            with self._lock:
                self._running[ctx.op] -= 1


class InProcessAgent:
    """One workspace's agent over `ws_dir`'s workspace, state and scratch directories, served in this process."""

    def __init__(self, ws_dir: Path, identity: AgentIdentity, faults: dict[str, str]) -> None:
        for part in ("workspace", "agent", "scratch", "home"):
            (ws_dir / part).mkdir(mode=0o700, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(ws_dir / "home"),  # not the developer's own dotfiles
            "ROOST_WORKSPACE": str(ws_dir / "workspace"),
        }
        root = str(ws_dir / "workspace")
        self.agent = AgentState(WorkspacePaths(root), str(ws_dir / "agent"), str(ws_dir / "scratch"), env, identity)
        self.ops = WatchedOps(self.agent, faults)
        self._served: list[tuple[socket.socket, threading.Thread]] = []
        self._lock = threading.Lock()
        self.alive = True

    def connect(self, identity: AgentIdentity) -> AgentClient:
        """A handshaken client on a new connection, which must prove `identity`.

        Raises:
            AgentError: agent_unreachable once the agent crashed; agent_identity_mismatch.
        """
        with self._lock:
            if not self.alive:
                raise AgentError(CRASHED, code="agent_unreachable", remedy=CHECK_WORKSPACE)
            agent_end, host_end = socket.socketpair()
            serve = Connection(agent_end, self.ops, agent_info()).serve
            thread = threading.Thread(target=serve, name="memory-agent", daemon=True)
            self._served.append((agent_end, thread))
            thread.start()
        host_end.settimeout(IO_TIMEOUT)
        return AgentClient(host_end, identity=identity)

    def crash(self) -> None:
        """Go away as a killed agent does: every connection breaks, running calls end, children go."""
        with self._lock:
            self.alive = False
            served, self._served = self._served, []
        for agent_end, _thread in served:
            try:
                agent_end.shutdown(socket.SHUT_RDWR)  # the host reads end-of-stream at once
            except OSError:
                pass
        for _agent_end, thread in served:
            thread.join(IO_TIMEOUT)
        self.agent.inflight.cancel_all()
        self.agent.stop_children()
        assert self.agent.inflight.wait_idle(IO_TIMEOUT), "a call outlived the agent's crash"


@dataclass(frozen=True)
class MemoryBoot:
    """What a workspace's record keeps of its in-memory agent: whose it is."""

    workspace: str

    def to_json(self) -> dict[str, Any]:
        return {"workspace": self.workspace}


class MemoryBackend:
    """A `roost.backends.Backend` whose workspaces' agents run in this process (see the module)."""

    name = NAME
    isolated = False
    image_kind: ImageKind = "none"
    network_refusal: str | None = "in-memory workspaces have no network of their own"
    proxy_refusal: str | None = "in-memory workspaces have no network gateway"

    def __init__(self) -> None:
        self.agents: dict[str, InProcessAgent] = {}
        self.faults: dict[str, str] = {}
        self.create_error: RoostError | None = None
        # Set: its stopped workspaces' disks are this ext4 image, as a microVM's are (`workspace disk`).
        self.disk_image: Path | None = None
        self._identities: dict[str, AgentIdentity] = {}

    # -- what tests do to it ---------------------------------------------------------------------
    def crash(self, ws_id: str) -> None:
        self.agents[ws_id].crash()

    def fail(self, op: str, code: str) -> None:
        """From now on every `op` call, in every workspace, fails with `code`."""
        self.faults[op] = code

    def impersonate(self, ws_id: str, ws_dir: Path) -> None:
        """Replace the workspace's agent by one holding another workspace's identity."""
        self.agents.pop(ws_id).crash()
        self.agents[ws_id] = InProcessAgent(ws_dir, AgentIdentity("ws-impostor", new_key()), self.faults)

    # -- the Backend protocol --------------------------------------------------------------------
    def availability(self) -> Availability:
        return Availability(NAME, True, "agents in this process (tests only)", isolated=False)

    def read_boot(self, stored: dict[str, Any]) -> MemoryBoot:
        workspace = stored.get("workspace")
        if not isinstance(workspace, str) or not workspace:
            raise ValueError("the in-memory agent's record names no workspace")
        return MemoryBoot(workspace)

    def create(self, ws_dir: Path, spec: CreateSpec) -> MemoryBoot:
        if self.create_error is not None:
            error, self.create_error = self.create_error, None
            raise error
        identity = self._identities.setdefault(spec.ws_id, AgentIdentity(spec.ws_id, new_key()))
        self.agents[spec.ws_id] = InProcessAgent(ws_dir, identity, self.faults)
        return MemoryBoot(spec.ws_id)

    def connect(self, ws_dir: Path, boot: MemoryBoot | None, *, timeout: float) -> AgentClient:
        agent = None if boot is None else self.agents.get(boot.workspace)
        if boot is None or agent is None:
            raise AgentError("the workspace is not running", code="agent_unreachable", remedy=CHECK_WORKSPACE)
        return agent.connect(self._identities[boot.workspace])

    def health(self, ws_dir: Path, boot: MemoryBoot | None) -> str | None:
        agent = None if boot is None else self.agents.get(boot.workspace)
        return None if agent is not None and agent.alive else CRASHED

    def network_namespace_pid(self, boot: MemoryBoot | None) -> int | None:
        return None

    def destroy(self, ws_dir: Path, ws_id: str, boot: MemoryBoot | None) -> None:
        agent = self.agents.pop(ws_id, None)
        if agent is not None:
            agent.crash()

    def discard_files(self, ws_dir: Path, boot: MemoryBoot | None) -> None:
        return None

    def protections(self, boot: MemoryBoot | None) -> tuple[Protection, ...]:
        return (Protection("isolation", False, "none: agents run in the test's own process"),)

    def content_store(self) -> None:
        return None

    def offline_disk(self, ws_dir: Path) -> OfflineDisk:
        if self.disk_image is not None:
            return OfflineDisk(image=self.disk_image)
        return OfflineDisk(trees=(("/workspace", ws_dir / "workspace"),))

    def rootfs_id_offset(self, boot: MemoryBoot | None) -> tuple[int, int]:
        return 0, 0

    def usage(self, ws_dir: Path, boot: MemoryBoot) -> HostUsage:
        return HostUsage("process tree")  # its agent runs in the test's process: nothing of its own to count

    def stop(self, ws_dir: Path, boot: MemoryBoot) -> MemoryBoot:
        self.destroy(ws_dir, boot.workspace, boot)
        return boot

    def start(self, ws_dir: Path, spec: CreateSpec, boot: MemoryBoot) -> MemoryBoot:
        return self.create(ws_dir, spec)

    def close(self) -> None:
        """End every agent still running (test teardown)."""
        for ws_id in list(self.agents):
            self.agents.pop(ws_id).crash()
