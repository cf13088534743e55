"""The sandbox backend: each workspace in its own Linux namespaces, via bubblewrap.

One workspace starts like this (launcher.py runs the first steps):

    launcher (host python, as roost's user)
      joins the workspace's cgroups (memory incl. tmpfs, pids, cpu)
      new user + mount namespace; ids 0..65535 inside are unprivileged host ids (idmap.py)
      becomes the namespace's root; stages what bwrap binds on a private tmpfs at /tmp
      overlay root: the env's rootfs (owned by those ids) read-only + the workspace's layers
    exec bwrap: new pid, ipc, uts, net and cgroup namespaces, the overlay as /,
      /workspace and the agent's state dir bound from the host, roost's agent code
      read-only, /tmp and /dev/shm sized within the memory limit, capabilities cut
      to a small set (in the namespace only), no new privileges, the seccomp filter
      (seccomp_filter.py)
      -> python3 (the env's own, or roost's bundle bound read-only at /opt/roost/python)
         running the guest agent on the listening socket the host bound at
         <ws_dir>/agent.sock and passed down as a descriptor

`--die-with-parent` is deliberately absent: the agent outlives the CLI.

Run by a normal user, the workspace can leave files owned by that user's
subordinate ids, which the user cannot unlink from outside: `discard_files`
removes those from a namespace with the workspace's own map (launcher.py's
remove mode).

Imports: roost (to find its code), backends.agent_keys, backends.base, backends.host_agent,
backends.processes, backends.sandbox.* (trust: the CA bundle), errors, models, network.attachment (RESOLVER_ADDRESS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from roost.backends.agent_keys import identity_of
from roost.backends.base import (
    AgentPython,
    Availability,
    CreateSpec,
    HostUsage,
    ImageKind,
    OfflineDisk,
)
from roost.backends.disk_usage import allocated_bytes
from roost.backends.host_agent import HostAgentBackend, await_agent, bind_listener, key_pipe, live_agent
from roost.backends.processes import WORKSPACE_MARKER, kill_tree, spawn_detached, wait_for_marked
from roost.backends.sandbox import cgroups, layout, seccomp_filter
from roost.backends.sandbox.boot import SandboxBoot
from roost.backends.sandbox.idmap import IdMap, host_id_map
from roost.backends.sandbox.launcher import STAGE
from roost.backends.sandbox.trust import TRUST_PATH, TRUST_VARIABLES, trust_bundle
from roost.config import package_dir
from roost.errors import BackendError
from roost.models import Protection

BOOT_DEADLINE = 20.0
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MEM_MIB = 2048
DEFAULT_PIDS = 1024
# Roughly Docker's default set: enough for package managers and su, never mount
# or ptrace of others. Capabilities of the workspace's own user namespace only.
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
_NO_FD = -1
_AGENT_LAUNCH = "import sys; sys.path.insert(0, '/opt/roost'); from roost.agent.__main__ import main; sys.exit(main())"


def _agent_code() -> Path:
    """The installed `roost` package directory, bound read-only at /opt/roost/roost."""
    return package_dir()


def _launcher() -> Path:
    return Path(__file__).with_name("launcher.py")


@cache
def _probe() -> tuple[bool, str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    argv = [bwrap, "--unshare-user", "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--", "/bin/true"]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap does not run: {exc}"
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        detail = reason[-1] if reason else f"exit {result.returncode}"
        return False, f"bwrap cannot create a user namespace: {detail} (user namespaces may be disabled)"
    version = subprocess.run([bwrap, "--version"], capture_output=True, check=False).stdout.decode().strip()
    return True, f"{version}: user, pid, ipc, uts, mount, net and cgroup namespaces; overlay root; seccomp"


def _limits(resources: dict[str, Any]) -> cgroups.Limits:
    mem = resources.get("mem_mib")
    pids = resources.get("pids")
    vcpus = resources.get("vcpus")
    return cgroups.Limits(
        memory_bytes=(mem if isinstance(mem, int) else DEFAULT_MEM_MIB) * 1024 * 1024,
        pids=pids if isinstance(pids, int) else DEFAULT_PIDS,
        vcpus=vcpus if isinstance(vcpus, int) else None,
    )


class SandboxBackend(HostAgentBackend[SandboxBoot]):
    """Workspaces as bubblewrap sandboxes over a cached environment rootfs."""

    name = "sandbox"
    isolated = True
    image_kind: ImageKind = "rootfs"
    network_refusal: str | None = None
    proxy_refusal: str | None = None
    gone = "the sandbox process is gone"

    def availability(self) -> Availability:
        ok, reason = _probe()
        if ok:
            # A sandbox without its filter would be less than it says: refuse rather than run one.
            seccomp = seccomp_filter.status()
            if not seccomp.available:
                return Availability(self.name, False, f"seccomp: {seccomp.reason}", isolated=True)
        return Availability(self.name, ok, reason, isolated=True)

    def read_boot(self, stored: dict[str, Any]) -> SandboxBoot:
        return SandboxBoot.from_json(stored)

    def rootfs_id_offset(self, boot: SandboxBoot | None) -> tuple[int, int]:
        id_map = self._id_map(boot)
        if os.geteuid() != 0:
            return 0, 0  # a normal user's cache is owned by that user, who is root inside
        return id_map.root_uid, id_map.root_gid

    @staticmethod
    def _id_map(boot: SandboxBoot | None) -> IdMap:
        """The workspace's id map; this host's for a new workspace or one from before id maps."""
        recorded = None if boot is None else boot.id_map
        return recorded if recorded is not None else host_id_map()

    def create(self, ws_dir: Path, spec: CreateSpec, boot: SandboxBoot | None = None) -> SandboxBoot:
        """Boot a new sandbox, or (given the `boot` it had) boot a stopped one again."""
        if not spec.rootfs:
            raise BackendError("the sandbox backend needs an environment image", code="image_missing")
        id_map = self._id_map(boot)
        limits = _limits(spec.resources)
        if boot is not None and boot.id_map is None:
            layout.adopt_legacy(ws_dir, id_map)
        layout.prepare(ws_dir, id_map)
        log = ws_dir / "sandbox.log"
        enforcement = cgroups.create(spec.ws_id, limits)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), WORKSPACE_MARKER: spec.ws_id}
        identity = identity_of(ws_dir, spec.ws_id, create=True)
        pid = None
        try:
            with bind_listener(ws_dir) as listener, ExitStack() as opened:
                key = key_pipe(identity)
                opened.callback(os.close, key)
                seccomp = seccomp_filter.filter_fd()
                opened.callback(os.close, seccomp)
                resolver = _resolver_conf()
                opened.callback(os.close, resolver)
                machine_id = _pipe_holding(f"{identity.machine_id}\n")
                opened.callback(os.close, machine_id)
                trust = trust_bundle(spec.rootfs, spec.trusted_ca) if spec.trusted_ca else _NO_FD
                if trust != _NO_FD:
                    opened.callback(os.close, trust)
                fds = _Fds(listener.fileno(), key, seccomp, resolver, machine_id, trust)
                python = spec.agent_python
                config = {
                    "cgroup_procs": enforcement.procs_files,
                    "id_map": id_map.launch_config(),
                    "rootfs": spec.rootfs,
                    "layers": list(spec.layers),
                    "binds": [
                        [str(ws_dir / "layers"), "layers", False],
                        [str(ws_dir / "workspace"), "workspace", False],
                        [str(ws_dir / "agent"), "agent", False],
                        [str(_agent_code()), "code", True],
                        *([[python.bundle, "python", True]] if python.bundle else []),
                    ],
                    "rlimits": {"core": 0, "nofile": 65536},
                    # Without a CPU cgroup, --vcpus still confines the workspace to that many CPUs.
                    "cpus": None if "cpu" in enforcement.enforced or limits.vcpus is None else _cpus(limits.vcpus),
                    "argv": _bwrap_argv(spec, limits, fds),
                }
                argv = [sys.executable, "-I", "-S", str(_launcher()), json.dumps(config)]
                pid = spawn_detached(
                    argv, env=env, log_path=log, cwd=ws_dir, pass_fds=[fd for fd in fds if fd != _NO_FD]
                )
            await_agent(ws_dir / "agent.sock", pid, log, BOOT_DEADLINE, identity)
            # Health follows the agent itself, not the launcher that started it.
            program = os.path.basename(python.command[0])
            agent_pid = wait_for_marked(spec.ws_id, "roost.agent", program=program, deadline=2.0)
            if agent_pid is None:
                raise BackendError("the sandbox started but its agent is not running", code="agent_start_failed")
        except BaseException:
            kill_tree(spec.ws_id, pid)
            cgroups.remove(enforcement)
            raise
        return SandboxBoot(spec.ws_id, agent_pid, sandbox_pid=pid, id_map=id_map, cgroups=enforcement)

    def start(self, ws_dir: Path, spec: CreateSpec, boot: SandboxBoot) -> SandboxBoot:
        return self.create(ws_dir, spec, boot)

    def network_namespace_pid(self, boot: SandboxBoot | None) -> int | None:
        # The agent runs in the workspace's user namespace (the launcher's) and its network namespace (bwrap's).
        return live_agent(boot)

    def destroy(self, ws_dir: Path, ws_id: str, boot: SandboxBoot | None) -> None:
        try:
            kill_tree(ws_id, live_agent(boot))
        except OSError as exc:
            raise BackendError(f"cannot stop workspace {ws_id}: {exc}", code="backend_error") from None
        finally:
            recorded = cgroups.Enforcement.from_json(None) if boot is None else boot.cgroups
            found = cgroups.made_for(ws_id)
            cgroups.remove(cgroups.Enforcement(recorded.version, tuple({*recorded.dirs, *found.dirs})))

    def usage(self, ws_dir: Path, boot: SandboxBoot) -> HostUsage:
        """Its cgroups' counts, where they are set up (the agent's process tree otherwise), and the disk
        its directory takes: what it wrote to its root and to /workspace."""
        counted = cgroups.usage(boot.cgroups)
        cpu = counted.get("cpu_usec")
        return HostUsage(
            "cgroup" if counted else "process tree",
            cpu_seconds=None if cpu is None else cpu / 1_000_000,
            memory_bytes=counted.get("memory_bytes"),
            memory_peak_bytes=counted.get("memory_peak_bytes"),
            pids=counted.get("pids"),
            disk_bytes=allocated_bytes(ws_dir),
            limits=cgroups.limits_of(boot.cgroups),
        )

    def discard_files(self, ws_dir: Path, boot: SandboxBoot | None) -> None:
        if os.geteuid() == 0:
            return  # root removes anything the workspace left
        left = layout.remove_own_files(ws_dir)
        if left:
            layout.remove_as_workspace_root(left, self._id_map(boot), _launcher())

    def content_store(self) -> None:
        """None: a fork streams the contents to each child. A pack linked between sandboxes could be
        changed by a process of the parent that held it open for writing before it was shared, even
        once it is given to an owner the sandbox does not map, so packs are never shared here."""
        return

    def offline_disk(self, ws_dir: Path) -> OfflineDisk:
        # /workspace is bound from its own directory; the rest of what it wrote is the overlay's upper layer.
        return OfflineDisk(trees=(("/workspace", ws_dir / "workspace"), ("/", ws_dir / "layers" / "upper")))

    def protections(self, boot: SandboxBoot | None) -> tuple[Protection, ...]:
        id_map = self._id_map(boot)
        enforcement = cgroups.preview() if boot is None else boot.cgroups
        seccomp = seccomp_filter.status()
        found = [
            Protection(
                "user_namespace",
                True,
                f"root inside is host uid {id_map.root_uid}, gid {id_map.root_gid}; {id_map.note}",
            ),
            Protection("seccomp", seccomp.available, seccomp.reason),
        ]
        for controller in cgroups.CONTROLLERS:
            if controller in enforcement.enforced:
                found.append(Protection(f"cgroup_{controller}", True, enforcement.enforced[controller]))
            else:
                reason = enforcement.not_enforced.get(controller, "not set up")
                found.append(Protection(f"cgroup_{controller}", False, f"not enforced: {reason}"))
        found.append(
            Protection(
                "agent_channel",
                True,
                "socket bound by the host outside the workspace, passed as a descriptor; the agent proves its workspace",
            )
        )
        return tuple(found)


def _resolver_conf() -> int:
    """A pipe holding the workspace's /etc/resolv.conf: roost's resolver, which only its network
    gateway answers (with no gateway, lookups fail at once: the address is not reachable)."""
    from roost.network.attachment import RESOLVER_ADDRESS  # only a boot needs the gateway's module

    return _pipe_holding(
        f"# written by roost: its gateway answers here under the workspace's network policy\n"
        f"nameserver {RESOLVER_ADDRESS}\n"
    )


def _pipe_holding(text: str) -> int:
    """The read end of a pipe holding `text` (a few lines: less than a pipe's buffer), for `--ro-bind-data`."""
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        pipe.write(text)
    return read_end


def _bwrap_argv(spec: CreateSpec, limits: cgroups.Limits, fds: _Fds) -> list[str]:
    """bubblewrap's command line: the sandbox (run from the launcher's staged tree), then the agent.

    /etc/resolv.conf (and /etc/machine-id) is bwrap's read-only copy of a pipe, made inside the sandbox's
    own mounts: nothing on the host is written, so no path the workspace controls is followed.
    The CA bundle is bound the same way."""
    python = spec.agent_python
    return [
        shutil.which("bwrap") or "bwrap",
        *_namespaces(spec.ws_id, spec.env_vars),
        *_file_system(limits),
        *(["--ro-bind", f"{STAGE}/python", python.bundle_mount] if python.bundle else []),
        # Readable by every user of the env (bwrap's default is 0600): apt's _apt and any
        # non-root user resolve names and check certificates too.
        "--perms",
        "0644",
        "--ro-bind-data",
        str(fds.resolver),
        "/etc/resolv.conf",
        # The workspace's own (`AgentIdentity.machine_id`): an env's image holds one every workspace would share.
        "--perms",
        "0444",
        "--ro-bind-data",
        str(fds.machine_id),
        "/etc/machine-id",
        *_trust_argv(fds.trust),
        "--seccomp",
        str(fds.seccomp),
        "--",
        *_agent_argv(spec.ws_id, fds, python),
    ]


def _trust_argv(trust: int) -> list[str]:
    """The CA bundle (the env's and the workspace's CA: see trust.py) bound read-only, and the
    variables that point TLS clients at it; nothing without one."""
    if trust == _NO_FD:
        return []
    argv = ["--perms", "0644", "--ro-bind-data", str(trust), TRUST_PATH]
    for name in TRUST_VARIABLES:
        argv += ["--setenv", name, TRUST_PATH]
    return argv


def _namespaces(ws_id: str, env_vars: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """New pid, ipc, uts, net and cgroup namespaces, the workspace id as the hostname, a clean
    environment (roost's defaults, then a custom env's variables over them), and capabilities cut
    to `KEPT_CAPABILITIES` (of the workspace's own user namespace)."""
    argv = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try"]
    argv += ["--hostname", ws_id, "--clearenv"]
    defaults = (("PATH", GUEST_PATH), ("HOME", "/root"), ("LANG", "C.UTF-8"))
    for name, value in (*defaults, *env_vars, (WORKSPACE_MARKER, ws_id)):
        argv += ["--setenv", name, value]
    argv += ["--chdir", "/workspace", "--cap-drop", "ALL"]
    for capability in KEPT_CAPABILITIES:
        argv += ["--cap-add", capability]
    return argv


def _file_system(limits: cgroups.Limits) -> list[str]:
    """The overlay as `/`, procfs with host-wide files masked, sized tmpfs mounts, and what is bound in."""
    # Each of /tmp and /dev/shm gets half the memory limit: their pages count
    # against it, and filling both still leaves the workspace's processes room.
    tmpfs_size = str(limits.memory_bytes // 2)
    return [
        "--bind",
        f"{STAGE}/merged",
        "/",
        # Host-wide knobs under /proc/sys belong to host root, which is not mapped
        # in the workspace's user namespace: reading works, writing fails.
        "--proc",
        "/proc",
        *_masked_proc_files(),
        "--dev",
        "/dev",
        # Sticky and world-writable, as on any Linux (bwrap's default is 0755): users other
        # than root (apt's _apt, a project's own) need their temporary files too.
        "--size",
        tmpfs_size,
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--size",
        tmpfs_size,
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
        "--bind",
        f"{STAGE}/workspace",
        "/workspace",
        "--bind",
        f"{STAGE}/agent",
        "/var/lib/roost-agent",
        "--ro-bind",
        f"{STAGE}/code",
        "/opt/roost/roost",
    ]


def _agent_argv(ws_id: str, fds: _Fds, python: AgentPython) -> list[str]:
    """The env's python3 (or roost's bundle) running roost's agent on the descriptors the host passed down."""
    return [
        *python.command,
        # Isolated mode: the agent's cwd is /workspace, which must never shadow a module it imports.
        "-I",
        "-B",
        "-c",
        _AGENT_LAUNCH,
        "--listen",
        f"socket-fd:{fds.listener}",
        "--workspace-id",
        ws_id,
        "--key-fd",
        str(fds.key),
        "--workspace-root",
        "/workspace",
        "--state-dir",
        "/var/lib/roost-agent",
        "--scratch-dir",
        "/workspace/.roost-staging",
    ]


# Host-wide state procfs shows to anyone allowed to look (as Docker does, masked):
# the descriptions of keys the workspace's uid may view, kernel memory, timer and
# scheduler internals. Each is covered by an empty read-only file.
MASKED_PROC_FILES = (
    "/proc/keys",
    "/proc/key-users",
    "/proc/kcore",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/latency_stats",
)


def _masked_proc_files() -> list[str]:
    # The sandbox's procfs has what the host's has (one kernel); bwrap cannot make a missing one.
    present = [path for path in MASKED_PROC_FILES if os.path.exists(path)]
    return [arg for path in present for arg in ("--ro-bind", "/dev/null", path)]


class _Fds(NamedTuple):
    """Descriptors the sandbox inherits: the agent's listening socket and key, bwrap's filter,
    the workspace's resolv.conf and machine-id, and its CA bundle (`_NO_FD`: none)."""

    listener: int
    key: int
    seccomp: int
    resolver: int
    machine_id: int
    trust: int


def _cpus(vcpus: int) -> list[int]:
    available = sorted(os.sched_getaffinity(0))
    return available[: max(1, min(vcpus, len(available)))]
