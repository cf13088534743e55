"""The mock backend: the agent as a plain host process. NOT ISOLATED.

For development and tests only. Commands run on the host as the calling
user; `/workspace` is a host directory. Everything that shows a mock
workspace labels it unisolated.

Imports: backends.agent_keys, backends.base, backends.host_agent, backends.processes, models and the standard library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from roost.backends.agent_keys import identity_of
from roost.backends.base import Availability, CreateSpec, ImageKind, OfflineDisk, StoreAccess
from roost.backends.host_agent import SOCKET, HostAgentBackend, HostAgentBoot, await_agent, bind_listener, key_pipe
from roost.backends.processes import WORKSPACE_MARKER, kill_tree, spawn_detached
from roost.models import Protection

BOOT_DEADLINE = 10.0


def _layout(ws_dir: Path) -> dict[str, Path]:
    return {
        "root": ws_dir / "workspace",
        "state": ws_dir / "agent",
        "scratch": ws_dir / "scratch",
        "home": ws_dir / "home",
        "log": ws_dir / "agent.log",
    }


class MockBackend(HostAgentBackend[HostAgentBoot]):
    """Runs each workspace's agent as a detached host process."""

    name = "mock"
    isolated = False
    image_kind: ImageKind = "none"
    network_refusal: str | None = (
        "the mock backend is unisolated: its workspaces are host processes on the host's own network,"
        " so no network policy or published port could be enforced"
    )

    proxy_refusal: str | None = "the mock backend has no network gateway to put the value in requests"

    def availability(self) -> Availability:
        return Availability(self.name, True, "host processes; no isolation (development only)", isolated=False)

    def read_boot(self, stored: dict[str, Any]) -> HostAgentBoot:
        return HostAgentBoot.from_json(stored)

    def offline_disk(self, ws_dir: Path) -> OfflineDisk:
        return OfflineDisk(trees=(("/workspace", _layout(ws_dir)["root"]),))

    def content_store(self) -> StoreAccess:
        # Nothing to protect a pack from: the workspace runs as roost's own user anyway.
        return StoreAccess(("agent", "blobs", "packs"))

    def protections(self, boot: HostAgentBoot | None) -> tuple[Protection, ...]:
        return (Protection("isolation", False, "none: commands run as host processes of roost's own user"),)

    def create(self, ws_dir: Path, spec: CreateSpec) -> HostAgentBoot:
        paths = _layout(ws_dir)
        for key in ("root", "state", "scratch", "home"):
            paths[key].mkdir(mode=0o700, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            # Outside /workspace, as in the sandbox: dotfiles and shell history never show in diffs.
            "HOME": str(paths["home"]),
            **dict(spec.env_vars),
            WORKSPACE_MARKER: spec.ws_id,
        }
        identity = identity_of(ws_dir, spec.ws_id, create=True)
        pid = None
        try:
            with bind_listener(ws_dir) as listener:
                key_fd = key_pipe(identity)
                argv = [
                    sys.executable,
                    # Isolated mode: the cwd is /workspace, which must never shadow a module it imports.
                    "-I",
                    "-m",
                    "roost.agent",
                    "--listen",
                    f"socket-fd:{listener.fileno()}",
                    "--workspace-id",
                    spec.ws_id,
                    "--key-fd",
                    str(key_fd),
                    "--workspace-root",
                    str(paths["root"]),
                    "--state-dir",
                    str(paths["state"]),
                    "--scratch-dir",
                    str(paths["scratch"]),
                ]
                try:
                    pid = spawn_detached(
                        argv, env=env, log_path=paths["log"], cwd=paths["root"], pass_fds=(listener.fileno(), key_fd)
                    )
                finally:
                    os.close(key_fd)
            await_agent(ws_dir / SOCKET, pid, paths["log"], BOOT_DEADLINE, identity)
        except BaseException:
            kill_tree(spec.ws_id, pid)
            raise
        return HostAgentBoot(spec.ws_id, pid)
