"""The mock backend: the agent as a plain host process. NOT ISOLATED.

For development and tests only. Commands run on the host as the calling
user; `/workspace` is a host directory. Everything that shows a mock
workspace labels it unisolated.

Imports: backends.base, backends.processes, errors, rpc and the standard library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from roost.backends.base import Availability, CreateSpec
from roost.backends.processes import WORKSPACE_MARKER, kill_tree, recorded_pid, spawn_detached, wait_for_socket
from roost.errors import AgentError, BackendError
from roost.rpc import AgentClient, connect_unix

BOOT_DEADLINE = 10.0


def _layout(ws_dir: Path) -> dict[str, Path]:
    return {
        "root": ws_dir / "workspace",
        "state": ws_dir / "agent",
        "scratch": ws_dir / "scratch",
        "socket": ws_dir / "agent.sock",
        "log": ws_dir / "agent.log",
    }


class MockBackend:
    """Runs each workspace's agent as a detached host process."""

    name = "mock"
    isolated = False
    needs_image = False

    def availability(self) -> Availability:
        return Availability(self.name, True, "host processes; no isolation (development only)", isolated=False)

    def create(self, ws_dir: Path, spec: CreateSpec) -> dict[str, Any]:
        paths = _layout(ws_dir)
        for key in ("root", "state", "scratch"):
            paths[key].mkdir(mode=0o700, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(paths["root"]),
            WORKSPACE_MARKER: spec.ws_id,
        }
        argv = [
            sys.executable,
            "-m",
            "roost.agent",
            "--listen",
            f"unix:{paths['socket']}",
            "--workspace-root",
            str(paths["root"]),
            "--state-dir",
            str(paths["state"]),
            "--scratch-dir",
            str(paths["scratch"]),
        ]
        pid = spawn_detached(argv, env=env, log_path=paths["log"], cwd=paths["root"])
        runtime = {"agent_pid": pid, "socket": str(paths["socket"]), "workspace": spec.ws_id}
        try:
            wait_for_socket(paths["socket"], pid, paths["log"], BOOT_DEADLINE)
        except BaseException:
            kill_tree(spec.ws_id, pid)
            raise
        return runtime

    def connect(self, ws_dir: Path, runtime: dict[str, Any], *, timeout: float) -> AgentClient:
        if recorded_pid(runtime) is None:
            # No point retrying a socket whose process is gone.
            raise AgentError(
                "the workspace agent is not running",
                code="agent_unreachable",
                hint="check `roost workspace status`; the workspace may need to be recreated",
            )
        return connect_unix(str(runtime.get("socket", _layout(ws_dir)["socket"])), timeout=timeout)

    def health(self, ws_dir: Path, runtime: dict[str, Any]) -> str | None:
        if recorded_pid(runtime) is None:
            return "the agent process is gone"
        if not Path(str(runtime.get("socket", ""))).exists():
            return "the agent socket is missing"
        return None

    def destroy(self, ws_dir: Path, ws_id: str, runtime: dict[str, Any]) -> None:
        try:
            kill_tree(ws_id, recorded_pid(runtime))
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None
