"""Export, snapshots and reset from the host's side (diffs: `workspace.diffs`).

The agent keeps snapshots; this module shapes its answers into models,
writes exports to host paths (every member judged on the host by
`export_filter`, built in a staging directory by `export_target`, never
over an existing path; a patch by `diffs.export_patch`), and stops shells
and services before a reset.

Imports: confinement, models, protocol, errors, store records, workspace siblings.
"""

from __future__ import annotations

import errno
import os
import tarfile
from typing import Any, BinaryIO

from roost import arguments
from roost.confinement import HostArg
from roost.errors import InvalidArgument, ProtocolError, RoostError
from roost.models import ExportResult, ResetResult, SnapshotInfo, SnapshotPage
from roost.protocol import Op
from roost.protocol.ignore import IgnoreSpec
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.store.records import WorkspaceRecord
from roost.workspace import network, operations
from roost.workspace.diffs import BASELINE, export_patch, ignore_rules
from roost.workspace.engine import Engine
from roost.workspace.export_filter import ExportPlan, plan_export, write_tar, write_tree
from roost.workspace.export_target import OUTPUT, export_target
from roost.workspace.host_tree import HostPath, host_path
from roost.workspace.streamed import Streamed

EXPORT_FORMATS = ("dir", "tar", "patch")
SPACE_HINT = "free some space where the output goes, or export somewhere else"


def export(
    engine: Engine,
    record: WorkspaceRecord,
    path: str | bytes,
    output: HostArg,
    fmt: str = "dir",
    ignore: IgnoreSpec | None = None,
) -> ExportResult:
    """Write a workspace path to a new host path: its files (`dir`), a tar, or its diff as a patch.

    Everything crossing is judged on the host (see `export_filter`); what a
    rule refuses is left out and listed in `skipped`. What `ignore` excludes
    (default: `ignore_rules(fmt=fmt)`) never leaves the workspace. The
    output is built in a private staging directory beside it and moved into
    place last, and an existing path is never written over.

    Raises:
        ConflictError: output_exists.  InvalidArgument: bad format, output_dir_missing,
            path_not_allowed (a symlink on the way to the output), export_skipped
            (a single entry that may not cross), path_excluded (the rules exclude `path`).
        RoostError: path_not_found, path_outside_workspace (from the agent).
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidArgument(f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    guest = arguments.guest_path(path)
    rules = ignore_rules(fmt=fmt) if ignore is None else ignore
    where = host_path(output, home=engine.home, output=True)
    try:
        return _export(engine, record, path, guest, where, fmt, rules)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RoostError(f"no space left writing {where.shown}", code="disk_full", hint=SPACE_HINT) from None
        raise RoostError(
            f"writing {where.shown} failed: {exc.strerror or exc}",
            code="export_failed",
            hint="check the output directory's permissions and free space",
        ) from None


def _export(
    engine: Engine,
    record: WorkspaceRecord,
    path: str | bytes,
    guest: str,
    where: HostPath,
    fmt: str,
    ignore: IgnoreSpec,
) -> ExportResult:
    """`guest` is `path` in its text form, as the agent reads it."""
    with export_target(where) as target:
        if fmt == "patch":
            return export_patch(engine, record, path, target, ignore)
        # The tar of a directory holding one file looks like the tar of that file: ask first.
        lone = operations.stat_file(engine, record, path).type != "dir"
        archive = target.scratch_file("agent.tar")
        with archive:
            args = {"path": guest, **(ignore.to_args() if ignore.active else {})}
            with engine.stream(record, Op.ARCHIVE_EXPORT, args) as tar:
                for _channel, chunk in tar:
                    archive.write(chunk)
            plan = _plan(archive, lone)
            if lone and plan.empty and plan.skipped:
                first = plan.skipped[0]
                raise InvalidArgument(
                    f"nothing to export: {guest} is skipped ({first.detail})",
                    code="export_skipped",
                    hint="export the file or directory it points at, or the directory holding it",
                )
            archive.seek(0)
            if fmt == "tar":
                with target.scratch_file(OUTPUT) as out:
                    written = write_tar(archive, plan, out)
                target.publish(OUTPUT)
            else:
                tree = target.scratch_dir(OUTPUT)
                try:
                    written = write_tree(archive, plan, tree)
                    names = os.listdir(tree)
                finally:
                    os.close(tree)
                target.publish(f"{OUTPUT}/{names[0]}" if lone and len(names) == 1 else OUTPUT)
    return ExportResult(target.shown_path, fmt, written.files, written.bytes, tuple(plan.skipped), plan.skipped_count)


def _plan(archive: BinaryIO, lone: bool) -> ExportPlan:
    archive.seek(0)
    try:
        return plan_export(archive, lone=lone)
    except tarfile.TarError as exc:
        raise ProtocolError(f"the workspace sent an unreadable archive: {exc}", code="archive_corrupt") from None


def _snapshot(data: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        name=str(data["name"]),
        created_at=str(data["created_at"]),
        files=int(data.get("files", 0)),
        size_bytes=int(data.get("size_bytes", 0)),
        stored_bytes=data.get("stored_bytes"),
    )


def create_snapshot(engine: Engine, record: WorkspaceRecord, name: str) -> SnapshotInfo:
    """Raises: RoostError: snapshot_exists, invalid_argument."""
    return _snapshot(engine.call(record, Op.SNAPSHOT_CREATE, {"name": arguments.snapshot_name(name)}).result)


def iter_snapshots(engine: Engine, record: WorkspaceRecord) -> Streamed[SnapshotInfo]:
    """Every snapshot as it arrives, the baseline first, then by creation time."""
    return Streamed(engine, record, Op.SNAPSHOT_LIST, {}, _snapshot)


def list_snapshots(engine: Engine, record: WorkspaceRecord) -> list[SnapshotInfo]:
    return list(iter_snapshots(engine, record))


def snapshot_page(
    engine: Engine, record: WorkspaceRecord, *, cursor: str | None = None, limit: int | None = None
) -> SnapshotPage:
    """Up to `limit` snapshots after `cursor`; `next_cursor` continues (None: done).

    Raises:
        InvalidArgument: a bad cursor or limit.
    """
    args = {
        "cursor": arguments.list_cursor(cursor),
        "limit": arguments.optional_count(limit, "limit", MAX_FILE_OFFSET),
    }
    listed = Streamed(engine, record, Op.SNAPSHOT_LIST, args, _snapshot)
    snapshots = tuple(listed)
    next_cursor = listed.summary.get("next_cursor")
    return SnapshotPage(snapshots, str(next_cursor) if next_cursor else None)


def delete_snapshot(engine: Engine, record: WorkspaceRecord, name: str) -> None:
    """Raises: RoostError: snapshot_not_found; invalid_argument for the baseline."""
    engine.call(record, Op.SNAPSHOT_DELETE, {"name": arguments.snapshot_name(name)})


def reset(engine: Engine, record: WorkspaceRecord, snapshot: str = BASELINE) -> ResetResult:
    """Stop services and close shells, then restore /workspace exactly to `snapshot`: the agent
    does all of it in one call (it owns winding its children down).

    Raises:
        RoostError: snapshot_not_found (nothing stopped), invalid_argument.
    """
    arguments.snapshot_name(snapshot)
    result = engine.call(record, Op.RESET, {"snapshot": snapshot}).result
    stopped = tuple(str(name) for name in result.get("services_stopped", []))
    for name in stopped:
        network.unpublish_service(engine, record.id, name)  # a stopped service's ports are freed
    return ResetResult(
        snapshot=snapshot,
        restored=int(result.get("restored", 0)),
        removed=int(result.get("removed", 0)),
        stopped_services=stopped,
        closed_shells=tuple(str(shell) for shell in result.get("shells_closed", [])),
    )
