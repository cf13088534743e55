"""The seam every backend implements: boot, stop, start and destroy a workspace's
agent, and hand back a handshaken connection to it (`AgentClient`).

Backends differ only in isolation and transport; every workspace operation
runs in the guest agent. A backend never imports another backend. What a
backend must remember about a workspace it returns from `create`, `stop` and
`start` (the record keeps it as `runtime`) and is given back on every call.

Imports: models, rpc and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from roost.models import Protection
from roost.rpc import AgentClient


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and why (not)."""

    name: str
    available: bool
    reason: str
    isolated: bool


@dataclass(frozen=True)
class CreateSpec:
    """What a backend needs to know to boot one workspace."""

    ws_id: str
    env: str
    resources: dict[str, Any] = field(default_factory=dict)
    network_policy: str = "off"
    # The environment's cached root filesystem, for backends that need one.
    rootfs: str | None = None
    image_key: str | None = None


class Backend(Protocol):
    name: str
    isolated: bool
    needs_image: bool

    def availability(self) -> Availability:
        """Probe the host; cheap enough for `roost doctor`."""
        ...

    def create(self, ws_dir: Path, spec: CreateSpec) -> dict[str, Any]:
        """Boot the workspace and its agent; return the runtime facts to persist.

        On failure the backend cleans up what it started before raising.

        Raises:
            BackendError: the workspace could not be started.
        """
        ...

    def connect(self, ws_dir: Path, runtime: dict[str, Any], *, timeout: float) -> AgentClient:
        """Open a handshaken connection to the workspace's agent.

        Raises:
            AgentError: agent_unreachable when it does not answer in time.
        """
        ...

    def health(self, ws_dir: Path, runtime: dict[str, Any]) -> str | None:
        """None when the workspace is alive, else why it is not."""
        ...

    def destroy(self, ws_dir: Path, ws_id: str, runtime: dict[str, Any]) -> None:
        """Stop every process of the workspace and free what it held outside its
        directory (cgroups, ...). Files are removed by the caller."""
        ...

    def discard_files(self, ws_dir: Path, runtime: dict[str, Any]) -> None:
        """After `destroy`, before the caller removes `ws_dir`: delete what the
        workspace wrote there that roost's user cannot delete directly (e.g.
        files owned by a normal user's subordinate ids).

        Raises:
            BackendError: cleanup_failed.
        """
        ...

    def protections(self, runtime: dict[str, Any] | None) -> tuple[Protection, ...]:
        """The layers isolating the workspace with this runtime (None: a workspace made
        here now), active or not and why."""
        ...

    def rootfs_id_offset(self, runtime: dict[str, Any] | None) -> tuple[int, int]:
        """How far the env rootfs's owners must be shifted (uid, gid) for this workspace
        (`runtime` None: a new one); (0, 0) uses the cached rootfs as it is."""
        ...

    def stop(self, ws_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
        """Shut the workspace down cleanly, keeping /workspace and its disk; return the runtime to persist."""
        ...

    def start(self, ws_dir: Path, spec: CreateSpec, runtime: dict[str, Any]) -> dict[str, Any]:
        """Boot a stopped workspace again from what `stop` kept; return the runtime to persist.

        Raises:
            BackendError: the workspace could not be started again.
        """
        ...
