"""The sandbox backend: each workspace in its own Linux namespaces, via bubblewrap.

How one workspace starts (bubblewrap 0.8 has no overlay option, so the
writable root is a kernel overlay mounted in a private mount namespace that
only the sandbox sees, and that disappears with it):

    unshare --mount --propagation private [--user --map-root-user]
      sh: bind the env's rootfs read-only at lower/, overlay lower + upper -> merged/,
          set rlimits (and CPU affinity for --vcpus)
      exec bwrap --bind merged / with new pid, ipc, uts, net namespaces,
          /workspace, the agent's state dir and its socket dir bound from the host,
          roost's agent code bound read-only, capabilities cut to a small set
        -> python3 (the env's own) running the guest agent on /run/roost/agent.sock

`--die-with-parent` is deliberately absent: the agent outlives the CLI.

Imports: backends.base, backends.processes, errors, rpc and the standard library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import roost
from roost.backends.base import Availability, CreateSpec
from roost.backends.host_agent import HostAgentBackend
from roost.backends.processes import (
    WORKSPACE_MARKER,
    kill_tree,
    spawn_detached,
    wait_for_marked,
    wait_for_socket,
)
from roost.errors import BackendError

BOOT_DEADLINE = 20.0
GUEST_SOCKET = "/run/roost/agent.sock"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Roughly Docker's default set: enough for package managers and su, never mount or ptrace.
KEPT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
)
_AGENT_LAUNCH = "import sys; sys.path.insert(0, '/opt/roost'); from roost.agent.__main__ import main; sys.exit(main())"
# Runs inside the private mount namespace; paths arrive as environment variables.
_SETUP_SCRIPT = r"""
set -eu
cd "$ROOST_SB_DIR"
mount --bind "$ROOST_SB_ROOTFS" lower
mount -o remount,bind,ro lower 2>/dev/null || true
mount -t overlay roost-root -o lowerdir=lower,upperdir=upper,workdir=work merged
ulimit -c 0
ulimit -n 65536 2>/dev/null || ulimit -n 4096
if [ -n "${ROOST_SB_MEM_KIB:-}" ]; then ulimit -v "$ROOST_SB_MEM_KIB"; fi
if [ -n "${ROOST_SB_CPUS:-}" ] && command -v taskset >/dev/null; then
  exec taskset -c "$ROOST_SB_CPUS" "$@"
fi
exec "$@"
"""


def _layout(ws_dir: Path) -> dict[str, Path]:
    names = ("lower", "upper", "work", "merged", "workspace", "agent", "run")
    paths = {name: ws_dir / name for name in names}
    paths["socket"] = paths["run"] / "agent.sock"
    paths["log"] = ws_dir / "sandbox.log"
    return paths


def _agent_code() -> Path:
    """The installed `roost` package directory, bound read-only at /opt/roost/roost."""
    return Path(roost.__file__).resolve().parent


@cache
def _probe() -> tuple[bool, str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if shutil.which("unshare") is None:
        return False, "unshare (util-linux) is not installed"
    argv = [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--", "/bin/true"]
    if os.geteuid() != 0:
        argv[1:1] = ["--unshare-user"]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap does not run: {exc}"
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        detail = reason[-1] if reason else f"exit {result.returncode}"
        if os.geteuid() != 0:
            detail += " (unprivileged: user namespaces may be disabled)"
        return False, f"bwrap cannot create namespaces: {detail}"
    version = subprocess.run([bwrap, "--version"], capture_output=True, check=False).stdout.decode().strip()
    return True, f"{version}: pid, ipc, uts, mount and net namespaces; overlay root"


class SandboxBackend(HostAgentBackend):
    """Workspaces as bubblewrap sandboxes over a cached environment rootfs."""

    name = "sandbox"
    isolated = True
    needs_image = True
    gone = "the sandbox process is gone"

    def availability(self) -> Availability:
        ok, reason = _probe()
        return Availability(self.name, ok, reason, isolated=True)

    def _bwrap_argv(self, ws_id: str, paths: dict[str, Path]) -> list[str]:
        argv = [
            shutil.which("bwrap") or "bwrap",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--hostname",
            "roost",
            "--bind",
            str(paths["merged"]),
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--bind",
            str(paths["workspace"]),
            "/workspace",
            "--bind",
            str(paths["agent"]),
            "/var/lib/roost-agent",
            "--bind",
            str(paths["run"]),
            "/run/roost",
            "--ro-bind",
            str(_agent_code()),
            "/opt/roost/roost",
            "--clearenv",
            "--setenv",
            "PATH",
            GUEST_PATH,
            "--setenv",
            "HOME",
            "/root",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--setenv",
            WORKSPACE_MARKER,
            ws_id,
            "--chdir",
            "/workspace",
        ]
        if os.geteuid() == 0:
            argv += ["--cap-drop", "ALL"]
            for capability in KEPT_CAPABILITIES:
                argv += ["--cap-add", capability]
        argv += [
            "--",
            "/usr/bin/python3",
            "-B",
            "-c",
            _AGENT_LAUNCH,
            "--listen",
            f"unix:{GUEST_SOCKET}",
            "--workspace-root",
            "/workspace",
            "--state-dir",
            "/var/lib/roost-agent",
            "--scratch-dir",
            "/workspace/.roost-staging",
        ]
        return argv

    def create(self, ws_dir: Path, spec: CreateSpec) -> dict[str, Any]:
        if not spec.rootfs:
            raise BackendError("the sandbox backend needs an environment image", code="image_missing")
        paths = _layout(ws_dir)
        for key in ("lower", "upper", "work", "merged", "workspace", "agent", "run"):
            paths[key].mkdir(mode=0o700, exist_ok=True)
        # The sandbox's root user must reach its own mount points.
        os.chmod(paths["workspace"], 0o755)
        unshare = [shutil.which("unshare") or "unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            unshare += ["--user", "--map-root-user"]
        argv = [*unshare, "--", "/bin/sh", "-c", _SETUP_SCRIPT, "roost-sandbox", *self._bwrap_argv(spec.ws_id, paths)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "ROOST_SB_DIR": str(ws_dir),
            "ROOST_SB_ROOTFS": spec.rootfs,
            WORKSPACE_MARKER: spec.ws_id,
        }
        mem = spec.resources.get("mem_mib")
        if isinstance(mem, int):
            env["ROOST_SB_MEM_KIB"] = str(mem * 1024)
        cpus = spec.resources.get("vcpus")
        if isinstance(cpus, int):
            env["ROOST_SB_CPUS"] = f"0-{max(0, min(cpus, os.cpu_count() or 1) - 1)}"
        paths["socket"].unlink(missing_ok=True)  # a restart must not mistake the old socket for the new agent
        pid = spawn_detached(argv, env=env, log_path=paths["log"], cwd=ws_dir)
        try:
            wait_for_socket(paths["socket"], pid, paths["log"], BOOT_DEADLINE)
            # Health follows the agent itself, not the bwrap that started it.
            # The socket exists, so the agent does; its environment may still read
            # empty for a moment after exec, so look again briefly.
            agent_pid = wait_for_marked(spec.ws_id, "roost.agent", deadline=2.0)
            if agent_pid is None:
                raise BackendError("the sandbox started but its agent is not running", code="agent_start_failed")
        except BaseException:
            kill_tree(spec.ws_id, pid)
            raise
        return {
            "agent_pid": agent_pid,
            "sandbox_pid": pid,
            "socket": str(paths["socket"]),
            "workspace": spec.ws_id,
            "image": spec.image_key,
        }
