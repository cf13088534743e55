"""`workspace stats`: what a running workspace uses now, with the limits it runs under.

The backend says what the host counts (`Backend.usage`: the sandbox's cgroups and the disk its
directory takes; nothing for a VM), the agent what it sees from inside (its process tree, or the whole
VM, and the bytes under /workspace); a number the host counts wins over the agent's. What neither can
know stays None: a process tree keeps no memory peak, and mock's /workspace is its whole disk.

Imports: backends (HostUsage), models, protocol (the stats messages), store records, workspace.engine.
"""

from __future__ import annotations

from typing import TypeVar

from roost.backends.base import HostUsage
from roost.models import ResourceLimits, WorkspaceStats
from roost.protocol.ops.agent import StatsArgs, StatsResult
from roost.store.records import WorkspaceRecord, utc_now
from roost.workspace.engine import Engine

MIB = 1024 * 1024
T = TypeVar("T", int, float)


def stats(engine: Engine, record: WorkspaceRecord) -> WorkspaceStats:
    """Raises: RoostError: workspace_stopped, workspace_unhealthy (with the restart hint) and the agent's errors."""
    host = engine.backend(record).usage(engine.store.dir(record.id), record.boot)
    inside = engine.call(record, StatsArgs(system=host.source == "vm")).result_as(StatsResult)
    return WorkspaceStats(
        id=record.id,
        at=utc_now(),
        source=host.source,
        cpu_seconds=_first(host.cpu_seconds, inside.cpu_seconds),
        memory_bytes=_first(host.memory_bytes, inside.memory_bytes),
        memory_peak_bytes=_first(host.memory_peak_bytes, inside.memory_peak_bytes),
        pids=_first(host.pids, inside.pids),
        workspace_disk_bytes=inside.workspace_bytes,
        disk_bytes=_first(host.disk_bytes, inside.filesystem_bytes),
        limits=_limits(record, host),
    )


def _first(host: T | None, agent: T | None) -> T | None:
    return host if host is not None else agent


def _limits(record: WorkspaceRecord, host: HostUsage) -> ResourceLimits:
    asked = record.resources
    memory = host.limits.get("memory_bytes", asked["mem_mib"] * MIB if "mem_mib" in asked else None)
    pids = host.limits.get("pids", asked.get("pids"))
    return ResourceLimits(
        vcpus=host.limits.get("vcpus", asked.get("vcpus")),
        memory_bytes=None if memory is None else int(memory),
        pids=None if pids is None else int(pids),
    )
