"""Export, snapshots and reset from the host's side (diffs: `workspace.diffs`).

The agent keeps snapshots; this module shapes its answers into models,
writes exports to host paths (every member judged on the host by
`export_filter`, built in a staging directory by `export_target`, never
over an existing path; a patch by `diffs.export_patch`), and stops shells
and services before a reset.

Imports: arguments, confinement, models, protocol (the op messages), errors, store records, workspace siblings.
"""

from __future__ import annotations

import errno
import os
import tarfile
from typing import BinaryIO

from roost import arguments
from roost.confinement import HostArg
from roost.errors import InvalidArgument, ProtocolError, RoostError
from roost.models import ExportResult, ResetResult, SnapshotInfo, SnapshotPage
from roost.protocol.ignore import IgnoreSpec
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.protocol.ops import snapshots as snapshot_ops
from roost.protocol.ops.snapshots import (
    BASELINE,
    ResetArgs,
    SnapshotCreateArgs,
    SnapshotDeleteArgs,
    SnapshotDeleteResult,
    SnapshotListArgs,
    SnapshotListResult,
    SnapshotRecord,
)
from roost.protocol.ops.transfer import ArchiveExportArgs
from roost.store.records import WorkspaceRecord
from roost.workspace import network, operations, services
from roost.workspace.diffs import export_patch, ignore_rules
from roost.workspace.engine import Engine
from roost.workspace.export_filter import ExportPlan, plan_export, write_tar, write_tree
from roost.workspace.export_target import OUTPUT, export_target
from roost.workspace.host_tree import HostPath, host_path
from roost.workspace.op_args import checked_args
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
            with checked_args():
                args = ArchiveExportArgs(
                    path=arguments.guest_name(path),
                    exclude=ignore.exclude,
                    gitignore=ignore.gitignore,
                    include_git_dir=ignore.include_git_dir,
                )
            with engine.stream(record, args) as tar:
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


def snapshot_info(snapshot: SnapshotRecord) -> SnapshotInfo:
    """A snapshot as the models show it, from the agent's record."""
    return SnapshotInfo(
        name=snapshot.name,
        created_at=snapshot.created_at or "",
        files=snapshot.files or 0,
        size_bytes=snapshot.size_bytes or 0,
        stored_bytes=snapshot.stored_bytes,
    )


def create_snapshot(engine: Engine, record: WorkspaceRecord, name: str) -> SnapshotInfo:
    """Raises: RoostError: snapshot_exists, invalid_argument."""
    checked = arguments.snapshot_name(name)
    with checked_args():
        args = SnapshotCreateArgs(name=checked)
    return snapshot_info(engine.call(record, args).result_as(SnapshotRecord))


def iter_snapshots(engine: Engine, record: WorkspaceRecord) -> Streamed[SnapshotInfo]:
    """Every snapshot as it arrives, the baseline first, then by creation time."""
    return Streamed(engine, record, SnapshotListArgs(), SnapshotRecord, snapshot_info)


def list_snapshots(engine: Engine, record: WorkspaceRecord) -> list[SnapshotInfo]:
    return list(iter_snapshots(engine, record))


def snapshot_page(
    engine: Engine, record: WorkspaceRecord, *, cursor: str | None = None, limit: int | None = None
) -> SnapshotPage:
    """Up to `limit` snapshots after `cursor`; `next_cursor` continues (None: done).

    Raises:
        InvalidArgument: a bad cursor or limit.
    """
    after = arguments.list_cursor(cursor)
    most = arguments.optional_count(limit, "limit", MAX_FILE_OFFSET)
    with checked_args():
        args = SnapshotListArgs(cursor=after, limit=most)
    listed = Streamed(engine, record, args, SnapshotRecord, snapshot_info)
    snapshots = tuple(listed)
    next_cursor = listed.summary_as(SnapshotListResult).next_cursor
    return SnapshotPage(snapshots, next_cursor or None)


def delete_snapshot(engine: Engine, record: WorkspaceRecord, name: str) -> None:
    """Raises: RoostError: snapshot_not_found; invalid_argument for the baseline."""
    checked = arguments.snapshot_name(name)
    with checked_args():
        args = SnapshotDeleteArgs(name=checked)
    engine.call(record, args).result_as(SnapshotDeleteResult)


def reset(engine: Engine, record: WorkspaceRecord, snapshot: str = BASELINE) -> ResetResult:
    """Stop services (none comes back with a later start) and close shells, then restore /workspace exactly to `snapshot`: the agent
    does all of it in one call (it owns winding its children down).

    Raises:
        RoostError: snapshot_not_found (nothing stopped), invalid_argument.
    """
    checked = arguments.snapshot_name(snapshot)
    with checked_args():
        args = ResetArgs(snapshot=checked)
    result = engine.call(record, args).result_as(snapshot_ops.ResetResult)
    for name in result.services_stopped:
        network.unpublish_service(engine, record.id, name)  # a stopped service's ports are freed
    if record.kept_services:
        services.forget_kept(engine, record.id, tuple(record.kept_services))  # stopped: none comes back
    return ResetResult(
        snapshot=snapshot,
        restored=result.restored,
        removed=result.removed,
        stopped_services=result.services_stopped,
        closed_shells=result.shells_closed,
    )
