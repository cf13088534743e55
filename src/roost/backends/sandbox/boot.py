"""What a sandbox workspace's record keeps: its agent, the launcher around it, the user
namespace's id map and the cgroups its limits went to.

A record from before sandboxes had their own user namespace has no id map
(None: a start adopts the workspace's files, see `layout.adopt_legacy`); one
from before cgroup limits has no cgroups (every limit "not enforced").

Imports: backends.host_agent, backends.sandbox.{cgroups,idmap} and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.backends.host_agent import HostAgentBoot
from roost.backends.sandbox.cgroups import Enforcement
from roost.backends.sandbox.idmap import IdMap


@dataclass(frozen=True)
class SandboxBoot(HostAgentBoot):
    """A sandbox's boot: the agent inside it (`agent_pid`), the launcher that became the
    sandbox's pid-namespace init (`sandbox_pid`), the id map and the cgroups."""

    sandbox_pid: int | None
    id_map: IdMap | None
    cgroups: Enforcement

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "sandbox_pid": self.sandbox_pid,
            "id_map": None if self.id_map is None else self.id_map.to_json(),
            "cgroups": self.cgroups.to_json(),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> SandboxBoot:
        """Raises: ValueError, BackendError (runtime_corrupt): `stored` is not a sandbox's record."""
        agent = HostAgentBoot.from_json(stored)
        launcher = stored.get("sandbox_pid")
        if launcher is not None and (isinstance(launcher, bool) or not isinstance(launcher, int)):
            raise ValueError(f"the sandbox's pid {launcher!r} is not a number")
        return SandboxBoot(
            agent.workspace,
            agent.agent_pid,
            sandbox_pid=launcher,
            id_map=IdMap.from_json(stored.get("id_map")),
            cgroups=Enforcement.from_json(stored.get("cgroups")),
        )
