"""What the mock and sandbox backends share: an agent process on the host's
process table, reached through a Unix socket recorded in the runtime.

Connecting fails fast once the recorded agent is gone (no socket retries),
health means "that process is still our agent and its socket exists", and
destroy kills the workspace's whole process tree.

Imports: backends.processes, errors, rpc and the standard library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roost.backends.base import CreateSpec
from roost.backends.processes import kill_tree, recorded_pid
from roost.errors import AgentError, BackendError, RoostError
from roost.protocol import Op
from roost.rpc import AgentClient, connect_unix


class HostAgentBackend:
    """Base of backends whose agent is a host process; `gone` names it in messages.

    Subclasses implement `create`; starting a stopped workspace is creating
    it again over the directories (and overlay) it kept.
    """

    gone = "the agent process is gone"

    def create(self, ws_dir: Path, spec: CreateSpec) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, ws_dir: Path, runtime: dict[str, Any]) -> dict[str, Any]:
        """Ask the agent to shut down (it stops services and closes shells), then make sure."""
        ws_id = str(runtime.get("workspace", ""))
        if recorded_pid(runtime) is not None:
            try:
                with connect_unix(str(runtime["socket"]), timeout=1.0) as client:
                    client.call(Op.SHUTDOWN)
            except RoostError:
                pass  # it is going away either way
        self.destroy(ws_dir, ws_id, runtime)
        return {**runtime, "agent_pid": None}

    def start(self, ws_dir: Path, spec: CreateSpec, runtime: dict[str, Any]) -> dict[str, Any]:
        return self.create(ws_dir, spec)

    def connect(self, ws_dir: Path, runtime: dict[str, Any], *, timeout: float) -> AgentClient:
        if recorded_pid(runtime) is None:
            raise AgentError(
                f"the workspace is not running ({self.gone})",
                code="agent_unreachable",
                hint="check `roost workspace status`; the workspace may need to be recreated",
            )
        return connect_unix(str(runtime["socket"]), timeout=timeout)

    def health(self, ws_dir: Path, runtime: dict[str, Any]) -> str | None:
        if recorded_pid(runtime) is None:
            return self.gone
        if not Path(str(runtime.get("socket", ""))).exists():
            return "the agent socket is missing"
        return None

    def destroy(self, ws_dir: Path, ws_id: str, runtime: dict[str, Any]) -> None:
        try:
            # Every process of the workspace carries its marker; killing the
            # agent's tree (and a sandbox's pid-namespace init) takes the rest.
            kill_tree(ws_id, recorded_pid(runtime))
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None
