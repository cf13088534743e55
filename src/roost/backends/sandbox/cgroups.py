"""A cgroup per sandbox: memory (tmpfs pages included), process count and CPU time.

cgroup v2 where the host runs the unified hierarchy, v1 otherwise (a hybrid
host such as this one mounts `memory`, `pids` and `cpu` as v1 controllers
beside an empty v2). Limits are written before the sandbox starts, and the
sandbox's launcher joins the cgroups as its first act, so nothing escapes
the count. Where a controller cannot be used (no permission to create
cgroups, as for a normal user without a delegated v2 subtree, or the
controller is missing) the workspace still starts and `Enforcement` says
which limit is not enforced and why; never silently.

Layout: v2 `/sys/fs/cgroup/roost/<ws_id>`, v1 `<controller mount>/roost/<ws_id>`:
one fixed place per workspace, whichever process (a CLI call, an MCP server,
the TTL reaper) creates or deletes it, so a delete finds the cgroups of a
workspace whose record never learnt them (a create killed midway).

Imports: the standard library only.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "roost"
CPU_PERIOD_US = 100_000
CONTROLLERS = ("memory", "pids", "cpu")


@dataclass(frozen=True)
class Limits:
    """What one workspace may use."""

    memory_bytes: int
    pids: int
    vcpus: int | None  # None: no CPU quota


@dataclass(frozen=True)
class Enforcement:
    """Per controller: where its limit is enforced, or why it is not."""

    version: int | None
    dirs: tuple[str, ...] = ()
    enforced: dict[str, str] = field(default_factory=dict)
    not_enforced: dict[str, str] = field(default_factory=dict)

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "dirs": list(self.dirs),
            "enforced": dict(self.enforced),
            "not_enforced": dict(self.not_enforced),
        }

    @classmethod
    def from_json(cls, value: object) -> Enforcement:
        if not isinstance(value, dict):
            return cls(None, not_enforced=dict.fromkeys(CONTROLLERS, "made before roost had cgroup limits"))
        version = value.get("version")
        return cls(
            version if isinstance(version, int) else None,
            tuple(str(d) for d in value.get("dirs", [])),
            {str(k): str(v) for k, v in dict(value.get("enforced", {})).items()},
            {str(k): str(v) for k, v in dict(value.get("not_enforced", {})).items()},
        )


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    found = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((fields[4].replace("\\040", " "), tail[0], set(tail[2].split(","))))
    return found


def host_version() -> tuple[int | None, str]:
    """Which hierarchy limits go to here, and a description."""
    mounts = _mounts()
    if any(point == str(CGROUP_ROOT) and kind == "cgroup2" for point, kind, _ in mounts):
        return 2, f"cgroup v2 (unified) at {CGROUP_ROOT}"
    v1 = sorted(c for _, kind, opts in mounts if kind == "cgroup" for c in CONTROLLERS if c in opts)
    if v1:
        return 1, f"cgroup v1 controllers: {', '.join(v1)}"
    return None, "no cgroup hierarchy is mounted"


def _v1_dirs(ws_id: str) -> tuple[dict[str, Path], dict[str, str]]:
    dirs: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for controller in CONTROLLERS:
        point = next((p for p, kind, opts in _mounts() if kind == "cgroup" and controller in opts), None)
        if point is None:
            missing[controller] = f"the {controller} controller is not mounted"
            continue
        dirs[controller] = Path(point) / PARENT / ws_id
    return dirs, missing


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


NO_CPU_QUOTA = "in place, no quota (a vCPU count caps CPU time)"


def _v1_limits(controller: str, directory: Path, limits: Limits) -> str:
    """Write one controller's limits; return what is enforced."""
    if controller == "memory":
        _write(directory / "memory.limit_in_bytes", str(limits.memory_bytes))
        swap = directory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            _write(swap, str(limits.memory_bytes))  # no escape into swap
        return f"{limits.memory_bytes // (1024 * 1024)} MiB including tmpfs (v1)"
    if controller == "pids":
        _write(directory / "pids.max", str(limits.pids))
        return f"{limits.pids} processes (v1)"
    if limits.vcpus is None:
        return NO_CPU_QUOTA
    _write(directory / "cpu.cfs_period_us", str(CPU_PERIOD_US))
    _write(directory / "cpu.cfs_quota_us", str(limits.vcpus * CPU_PERIOD_US))
    return f"{limits.vcpus} CPU(s) of time (v1)"


def _v2_limits(directory: Path, limits: Limits, available: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    enforced: dict[str, str] = {}
    missing: dict[str, str] = {}
    for controller in CONTROLLERS:
        if controller not in available:
            missing[controller] = f"the {controller} controller is not available to roost's cgroup"
    if "memory" in available:
        _write(directory / "memory.max", str(limits.memory_bytes))
        if (directory / "memory.swap.max").exists():
            _write(directory / "memory.swap.max", "0")
        enforced["memory"] = f"{limits.memory_bytes // (1024 * 1024)} MiB including tmpfs (v2)"
    if "pids" in available:
        _write(directory / "pids.max", str(limits.pids))
        enforced["pids"] = f"{limits.pids} processes (v2)"
    if "cpu" in available:
        if limits.vcpus is None:
            enforced["cpu"] = NO_CPU_QUOTA
        else:
            _write(directory / "cpu.max", f"{limits.vcpus * CPU_PERIOD_US} {CPU_PERIOD_US}")
            enforced["cpu"] = f"{limits.vcpus} CPU(s) of time (v2)"
    return enforced, missing


def _unprivileged(version: int | None) -> str:
    user = os.environ.get("USER") or str(os.geteuid())
    if version == 2:
        return f"roost runs as {user}, and does not yet use a cgroup v2 subtree delegated to a normal user"
    return f"roost runs as {user}; cgroup v1 cannot be delegated to a normal user"


def _usable() -> tuple[int, None] | tuple[int | None, Enforcement]:
    """The hierarchy roost can make cgroups in here, or why none (as what is not enforced)."""
    version, description = host_version()
    if version is None:
        return None, Enforcement(None, not_enforced=dict.fromkeys(CONTROLLERS, description))
    if os.geteuid() != 0:
        return version, Enforcement(version, not_enforced={c: _unprivileged(version) for c in CONTROLLERS})
    return version, None


def create(ws_id: str, limits: Limits) -> Enforcement:
    """Make the workspace's cgroups with their limits (what cannot be made is reported, not raised)."""
    version, refused = _usable()
    if refused is not None:
        return refused
    if version == 2:
        return _create_v2(ws_id, limits)
    dirs, missing = _v1_dirs(ws_id)
    enforced: dict[str, str] = {}
    made: list[str] = []
    for controller, directory in dirs.items():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            made.append(str(directory))
            enforced[controller] = _v1_limits(controller, directory, limits)
        except OSError as exc:
            missing[controller] = f"cannot set up {directory}: {exc.strerror}"
    return Enforcement(1, tuple(made), enforced, missing)


def _create_v2(ws_id: str, limits: Limits) -> Enforcement:
    parent = CGROUP_ROOT / PARENT
    directory = parent / ws_id
    try:
        available = set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
        wanted = [c for c in CONTROLLERS if c in available]
        parent.mkdir(exist_ok=True)
        for level in (CGROUP_ROOT, parent):
            _write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        directory.mkdir(exist_ok=True)
        enforced, missing = _v2_limits(directory, limits, set(wanted))
    except OSError as exc:
        return Enforcement(2, (), not_enforced=dict.fromkeys(CONTROLLERS, f"cannot set up {directory}: {exc.strerror}"))
    return Enforcement(2, (str(directory),), enforced, missing)


def preview() -> Enforcement:
    """What `create` would enforce on this host now, without making anything."""
    version, refused = _usable()
    if refused is not None:
        return refused
    if version == 2:
        try:
            available = set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
        except OSError:
            available = set()
        return Enforcement(
            2,
            enforced={c: "available (v2)" for c in CONTROLLERS if c in available},
            not_enforced={c: f"the {c} controller is not available" for c in CONTROLLERS if c not in available},
        )
    dirs, missing = _v1_dirs("preview")
    enforced = {}
    for controller, directory in dirs.items():
        parent = next(p for p in (directory.parent, *directory.parents) if p.exists())
        if os.access(parent, os.W_OK):
            enforced[controller] = "available (v1)"
        else:
            missing[controller] = f"{parent} is not writable"
    return Enforcement(1, enforced=enforced, not_enforced=missing)


def _pids(directory: str) -> list[int]:
    try:
        return [int(p) for p in Path(directory, "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def remove(enforcement: Enforcement, *, deadline: float = 3.0) -> None:
    """Kill whatever is left in the workspace's cgroups and remove them (bounded; never raises)."""
    end = time.monotonic() + deadline
    for directory in enforcement.dirs:
        kill = Path(directory, "cgroup.kill")
        while Path(directory).exists():
            try:
                if kill.exists():
                    _write(kill, "1")
                else:
                    for pid in _pids(directory):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                os.rmdir(directory)
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() >= end:
                    break  # busy with a process stuck in the kernel: left for the next delete
                time.sleep(0.01)


def made_for(ws_id: str) -> Enforcement:
    """The cgroups `create` would have made for `ws_id`, found on the host by name (for a
    workspace whose record never learnt them, e.g. one killed while it was being created)."""
    version, _ = host_version()
    if version == 2:
        candidates = [CGROUP_ROOT / PARENT / ws_id]
    elif version == 1:
        candidates = list(_v1_dirs(ws_id)[0].values())
    else:
        candidates = []
    return Enforcement(version, tuple(str(d) for d in candidates if d.is_dir()))


def usage(enforcement: Enforcement) -> dict[str, int]:
    """What the workspace uses now, where a cgroup counts it: memory_bytes, memory_peak_bytes,
    pids, cpu_usec (CPU time in microseconds). A key no cgroup of it counts is absent."""
    found: dict[str, int] = {}
    files = {
        "memory_bytes": ("memory.current", "memory.usage_in_bytes"),
        "memory_peak_bytes": ("memory.peak", "memory.max_usage_in_bytes"),
        "pids": ("pids.current",),
    }
    for directory in enforcement.dirs:
        for key, names in files.items():
            for name in names:
                try:
                    found[key] = int(Path(directory, name).read_text().strip())
                except (OSError, ValueError):
                    continue
        cpu = _cpu_usec(Path(directory))
        if cpu is not None:
            found["cpu_usec"] = cpu
    return found


def _cpu_usec(directory: Path) -> int | None:
    """CPU time: v2's `usage_usec` in cpu.stat, v1's cpuacct.usage (nanoseconds)."""
    try:
        for line in (directory / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value)
    except (OSError, ValueError):
        pass
    try:
        return int((directory / "cpuacct.usage").read_text().strip()) // 1000
    except (OSError, ValueError):
        return None


def limits_of(enforcement: Enforcement) -> dict[str, float]:
    """The limits its cgroups enforce: memory_bytes, pids, vcpus (a CPU quota in CPUs); absent: none set."""
    found: dict[str, float] = {}
    files = {"memory_bytes": ("memory.max", "memory.limit_in_bytes"), "pids": ("pids.max",)}
    for directory in map(Path, enforcement.dirs):
        for key, names in files.items():
            for name in names:
                try:
                    value = (directory / name).read_text().strip()
                except OSError:
                    continue
                if value.isdigit() and int(value) < 2**62:  # v1 writes "no limit" as a huge number
                    found[key] = int(value)
        quota = _cpu_quota(directory)
        if quota is not None:
            found["vcpus"] = quota
    return found


def _cpu_quota(directory: Path) -> float | None:
    try:
        quota, _, period = (directory / "cpu.max").read_text().partition(" ")
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
        period_us = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 else None
