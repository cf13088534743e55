"""Diff, export, snapshots and reset from the host's side.

The agent computes diffs and keeps snapshots; this module shapes its
answers into models, writes exports to host paths (never over an existing
one, always via a temp name then rename, tar members checked on the way
in), and stops shells and services before a reset.

Imports: images.layers (safe tar unpacking), models, protocol, errors,
store records, workspace siblings.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from roost import arguments
from roost.errors import ConflictError, InvalidArgument, NotFound
from roost.images.layers import apply_layer
from roost.models import DiffEntry, DiffResult, ExportResult, ResetResult, SnapshotInfo
from roost.protocol import Op
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.store.records import WorkspaceRecord
from roost.workspace import operations, services, shells
from roost.workspace.runtime import Runtime

BASELINE = "baseline"
EXPORT_FORMATS = ("dir", "tar", "patch")
DEFAULT_DIFF_BYTES = 1024 * 1024


def _entry(data: dict[str, Any]) -> DiffEntry:
    return DiffEntry(
        path=str(data["path"]),
        change=str(data["change"]),
        kind=str(data["kind"]),
        old_size=data.get("old_size"),
        new_size=data.get("new_size"),
        old_mode=data.get("old_mode"),
        new_mode=data.get("new_mode"),
        binary=bool(data.get("binary")),
        old_target=data.get("old_target"),
        new_target=data.get("new_target"),
    )


def diff(
    rt: Runtime,
    record: WorkspaceRecord,
    *,
    against: str = BASELINE,
    paths: tuple[str, ...] = (),
    stat: bool = False,
    max_bytes: int | None = DEFAULT_DIFF_BYTES,
) -> DiffResult:
    """Raises: RoostError: snapshot_not_found, path_outside_workspace; invalid_argument before any call."""
    args: dict[str, Any] = {
        "against": arguments.snapshot_name(against),
        "paths": [arguments.guest_path(path) for path in paths],
        "stat": bool(stat),
        "max_bytes": arguments.optional_count(max_bytes, "max_bytes", MAX_FILE_OFFSET, unit="bytes"),
    }
    reply = rt.call(record, Op.DIFF, args)
    result = reply.result
    return DiffResult(
        against=str(result["against"]),
        changes=tuple(_entry(c) for c in result.get("changes", [])),
        counts=dict(result.get("counts", {})),
        patch=reply.streams.get("data", b"").decode("utf-8", errors="replace"),
        truncated=bool(result.get("truncated")),
    )


def _fresh_output(output: str) -> Path:
    target = Path(output).expanduser().absolute()
    if os.path.lexists(target):
        raise ConflictError(f"{output} already exists", code="output_exists", hint="choose a new --output path")
    if not target.parent.is_dir():
        raise InvalidArgument(f"the directory of {output} does not exist", code="output_dir_missing")
    return target


def export(rt: Runtime, record: WorkspaceRecord, path: str, output: str, fmt: str = "dir") -> ExportResult:
    """Write a workspace path to a new host path: its files (`dir`), a tar, or its diff as a patch.

    Raises:
        ConflictError: output_exists.  InvalidArgument: bad format or output directory.
        RoostError: path_not_found, path_outside_workspace (from the agent).
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidArgument(f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    arguments.guest_path(path)
    target = _fresh_output(output)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.roost-", dir=target.parent))
    try:
        if fmt == "patch":
            patch = diff(rt, record, paths=(path,), max_bytes=None)
            data = patch.patch.encode()
            (staging / "out").write_bytes(data)
            os.replace(staging / "out", target)
            return ExportResult(str(target), fmt, len(patch.changes), len(data))
        # The tar of a directory holding one file looks like the tar of that file: ask first.
        is_dir = operations.stat_file(rt, record, path).type == "dir"
        tar_path = staging / "export.tar"
        with open(tar_path, "wb") as fh:

            def save(_channel: str, chunk: bytes) -> None:
                fh.write(chunk)

            reply = rt.call(record, Op.ARCHIVE_EXPORT, {"path": path}, on_data=save)
        result = reply.result
        if fmt == "tar":
            os.replace(tar_path, target)
        else:
            tree = staging / "tree"
            tree.mkdir()
            apply_layer(tar_path, tree, whiteouts=False)  # refuses escapes, never writes through links
            entries = list(tree.iterdir())
            os.replace(tree if is_dir or len(entries) != 1 else entries[0], target)
        return ExportResult(str(target), fmt, int(result.get("files", 0)), int(result.get("bytes", 0)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _snapshot(data: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        name=str(data["name"]),
        created_at=str(data["created_at"]),
        files=int(data.get("files", 0)),
        size_bytes=int(data.get("size_bytes", 0)),
        stored_bytes=data.get("stored_bytes"),
    )


def create_snapshot(rt: Runtime, record: WorkspaceRecord, name: str) -> SnapshotInfo:
    """Raises: RoostError: snapshot_exists, invalid_argument."""
    return _snapshot(rt.call(record, Op.SNAPSHOT_CREATE, {"name": arguments.snapshot_name(name)}).result)


def list_snapshots(rt: Runtime, record: WorkspaceRecord) -> list[SnapshotInfo]:
    return [_snapshot(s) for s in rt.call(record, Op.SNAPSHOT_LIST).result.get("snapshots", [])]


def delete_snapshot(rt: Runtime, record: WorkspaceRecord, name: str) -> None:
    """Raises: RoostError: snapshot_not_found; invalid_argument for the baseline."""
    rt.call(record, Op.SNAPSHOT_DELETE, {"name": arguments.snapshot_name(name)})


def reset(rt: Runtime, record: WorkspaceRecord, snapshot: str = BASELINE) -> ResetResult:
    """Stop services and close shells, then restore /workspace exactly to `snapshot`."""
    arguments.snapshot_name(snapshot)
    # Names only: reading every manifest (10,000 rows each) would cost more than the reset.
    listed = rt.call(record, Op.SNAPSHOT_LIST, {"names_only": True}).result.get("snapshots", [])
    if snapshot not in {s.get("name") for s in listed}:
        raise NotFound(
            f"no snapshot {snapshot!r}",
            code="snapshot_not_found",
            hint="list them with `roost workspace snapshot list`",
        )
    stopped = services.stop_all(rt, record)
    closed = shells.close_all(rt, record)
    result = rt.call(record, Op.RESET, {"snapshot": snapshot}).result
    return ResetResult(
        snapshot=snapshot,
        restored=int(result.get("restored", 0)),
        removed=int(result.get("removed", 0)),
        stopped_services=tuple(stopped),
        closed_shells=tuple(closed),
    )
