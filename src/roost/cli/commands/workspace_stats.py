"""`roost workspace stats WS`: what a running workspace uses now, beside its limits.

Imports: cli siblings, models and the standard library.
"""

from __future__ import annotations

import argparse

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json
from roost.models import WorkspaceStats

_UNKNOWN = "unknown"


def stats(args: argparse.Namespace) -> int:
    found = sdk(args).workspace(args.workspace).stats()
    if args.json:
        emit_json(found.to_dict())
    else:
        print(describe(found))
    return 0


def describe(found: WorkspaceStats) -> str:
    limits = found.limits
    rows = [
        ("id", found.id),
        ("source", found.source),
        ("cpu", _of(_seconds(found.cpu_seconds), None if limits.vcpus is None else f"{limits.vcpus:g} vCPU")),
        ("memory", _of(_bytes(found.memory_bytes), _bytes(limits.memory_bytes))),
        ("peak", _bytes(found.memory_peak_bytes) or _UNKNOWN),
        (
            "pids",
            _of(None if found.pids is None else str(found.pids), None if limits.pids is None else str(limits.pids)),
        ),
        ("/workspace", _bytes(found.workspace_disk_bytes) or _UNKNOWN),
        ("disk", _bytes(found.disk_bytes) or _UNKNOWN),
    ]
    return "\n".join(f"{key:<10} {value}" for key, value in rows)


def _of(value: str | None, limit: str | None) -> str:
    return f"{value or _UNKNOWN} (limit {limit or 'none'})"


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f} s"


def _bytes(value: int | None) -> str | None:
    if value is None:
        return None
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return None
