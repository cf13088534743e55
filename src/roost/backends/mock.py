"""The mock backend: the agent as a plain host process. NOT ISOLATED.

For development and tests only. Commands run on the host as the calling
user; `/workspace` is a host directory. Everything that shows a mock
workspace labels it unisolated.

Imports: backends.base, backends.processes, errors, rpc and the standard library.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from roost.backends.base import Availability, CreateSpec
from roost.backends.processes import WORKSPACE_MARKER, cmdline_contains, is_alive, kill_tree, spawn_detached
from roost.errors import BackendError
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


def _agent_pid(runtime: dict[str, Any]) -> int | None:
    """The recorded agent pid if that process is still our agent (pids get reused)."""
    pid = runtime.get("agent_pid")
    socket = runtime.get("socket")
    if isinstance(pid, int) and isinstance(socket, str) and is_alive(pid) and cmdline_contains(pid, socket):
        return pid
    return None


class MockBackend:
    """Runs each workspace's agent as a detached host process."""

    name = "mock"
    isolated = False

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
        runtime = {"agent_pid": pid, "socket": str(paths["socket"])}
        try:
            self._wait_ready(paths, pid)
        except BaseException:
            kill_tree(spec.ws_id, pid)
            raise
        return runtime

    def _wait_ready(self, paths: dict[str, Path], pid: int) -> None:
        deadline = time.monotonic() + BOOT_DEADLINE
        while not paths["socket"].exists():
            if not is_alive(pid):
                log = paths["log"].read_text(errors="replace")[-2000:] if paths["log"].exists() else ""
                raise BackendError(
                    f"the agent exited during start-up: {log.strip().splitlines()[-1] if log.strip() else 'no output'}",
                    code="agent_start_failed",
                    hint="run `roost doctor`",
                )
            if time.monotonic() >= deadline:
                raise BackendError("the agent did not start in time", code="agent_start_failed", hint="run `roost doctor`")
            time.sleep(0.002)

    def connect(self, ws_dir: Path, runtime: dict[str, Any], *, timeout: float) -> AgentClient:
        return connect_unix(str(runtime.get("socket", _layout(ws_dir)["socket"])), timeout=timeout)

    def health(self, ws_dir: Path, runtime: dict[str, Any]) -> str | None:
        if _agent_pid(runtime) is None:
            return "the agent process is gone"
        if not Path(str(runtime.get("socket", ""))).exists():
            return "the agent socket is missing"
        return None

    def destroy(self, ws_dir: Path, ws_id: str, runtime: dict[str, Any]) -> None:
        try:
            kill_tree(ws_id, _agent_pid(runtime))
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None
