"""Diffs from the host's side: streamed change by change, collected into a `DiffResult`, or exported as a patch.

The agent sends each change (tree order) as a record followed by its patch
text (`{"patch": ...}` records), so a diff of any size passes through in
bounded memory: `stream_diff` yields them as `DiffEntry` values and `str`
pieces as they arrive, `diff` collects one (or, with `limit`, one page),
and `export_patch` writes the patch to its file while it streams, leaving
out what may not cross (`export_patch.PatchFilter`). Ignore rules
(`ignore_rules`) travel with the arguments, so every page of a diff and
every part of a streamed one leaves out the same paths.

Imports: arguments, models, protocol, errors, workspace siblings.
"""

from __future__ import annotations

from collections.abc import Sequence

from roost import arguments
from roost.errors import InvalidArgument, ProtocolError
from roost.models import DiffEntry, DiffResult, ExportResult
from roost.protocol.ignore import IgnoreSpec
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.protocol.ops.snapshots import BASELINE, DiffArgs, DiffRecord
from roost.protocol.ops.snapshots import DiffResult as DiffSummary
from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine
from roost.workspace.export_patch import PatchFilter
from roost.workspace.export_target import OUTPUT, ExportTarget
from roost.workspace.op_args import checked_args
from roost.workspace.streamed import Streamed

__all__ = [
    "BASELINE",
    "DEFAULT_DIFF_BYTES",
    "diff",
    "diff_args",
    "export_patch",
    "ignore_rules",
    "stream_diff",
    "stream_entries",
]

DEFAULT_DIFF_BYTES = 1024 * 1024


def diff_entry(change: DiffRecord) -> DiffEntry:
    """A change as the models show it, from the agent's record.

    Raises:
        ProtocolError: the record is a patch piece, where a change belongs.
    """
    if change.path is None or change.change is None:
        raise ProtocolError("the agent sent patch text where a change belongs")
    return DiffEntry(
        path=change.path,
        change=change.change,
        kind=str(change.kind),
        old_size=change.old_size,
        new_size=change.new_size,
        old_mode=change.old_mode,
        new_mode=change.new_mode,
        binary=bool(change.binary),
        old_target=change.old_target,
        new_target=change.new_target,
    )


def _part(record: DiffRecord) -> DiffEntry | str:
    return record.patch if record.patch is not None else diff_entry(record)


def ignore_rules(
    exclude: object = (), gitignore: object = False, include_git_dir: object = None, *, fmt: str | None = None
) -> IgnoreSpec:
    """The checked ignore rules of a diff (`fmt` None) or an export in format `fmt`.

    `.git` stays in unless `include_git_dir` says otherwise, except where
    git would never carry it: under `gitignore`, and in a patch (`git
    apply` refuses any path inside `.git`).

    Raises:
        InvalidArgument: see `arguments.ignore_spec`.
    """
    keep_git = not (gitignore is True or fmt == "patch")
    return arguments.ignore_spec(exclude, gitignore, include_git_dir, git_dir_default=keep_git)


def diff_args(
    *,
    against: str = BASELINE,
    paths: Sequence[str | bytes] = (),
    stat: bool = False,
    max_bytes: int | None = DEFAULT_DIFF_BYTES,
    cursor: str | None = None,
    limit: int | None = None,
    ignore: IgnoreSpec | None = None,
) -> DiffArgs:
    """The agent's arguments of a diff, every one checked; `ignore` (from `ignore_rules`) leaves paths out.

    Raises:
        InvalidArgument: a bad snapshot name, path, byte cap, cursor or limit.
    """
    if isinstance(paths, str | bytes):
        raise InvalidArgument("paths must be a list of paths", hint=f"e.g. [{paths!r}]")
    rules = ignore or IgnoreSpec()
    snapshot = arguments.snapshot_name(against)
    below = tuple(arguments.guest_name(path) for path in paths)
    cap = arguments.optional_count(max_bytes, "max_bytes", MAX_FILE_OFFSET, unit="bytes")
    after = arguments.list_cursor(cursor)
    most = arguments.optional_count(limit, "limit", MAX_FILE_OFFSET)
    with checked_args():
        return DiffArgs(
            cursor=after,
            limit=most,
            exclude=rules.exclude,
            gitignore=rules.gitignore,
            include_git_dir=rules.include_git_dir,
            against=snapshot,
            paths=below,
            stat=bool(stat),
            max_bytes=cap,
        )


def stream_diff(engine: Engine, record: WorkspaceRecord, args: DiffArgs) -> Streamed[DiffEntry | str]:
    """Each change's `DiffEntry`, then its patch text in `str` pieces, in tree order, as they arrive.

    `args` come from `diff_args`. The summary: `against`, `counts` (every
    change), `truncated`, `count` and `next_cursor`.
    """
    return Streamed(engine, record, args, DiffRecord, _part, redactor=engine.redactor(record))


def stream_entries(engine: Engine, record: WorkspaceRecord, args: DiffArgs) -> Streamed[DiffEntry]:
    """Each change's `DiffEntry` as it arrives (`args` from `diff_args` with `stat`: no patch text is sent)."""
    return Streamed(engine, record, args, DiffRecord, diff_entry)


def diff(engine: Engine, record: WorkspaceRecord, args: DiffArgs) -> DiffResult:
    """The whole diff (or, with a `limit`, one page of it) as one value.

    Raises:
        RoostError: snapshot_not_found, path_outside_workspace; invalid_argument before any call.
    """
    changes: list[DiffEntry] = []
    patch: list[str] = []
    with stream_diff(engine, record, args) as parts:
        for part in parts:
            if isinstance(part, str):
                patch.append(part)
            else:
                changes.append(part)
        summary = parts.summary_as(DiffSummary)
    return DiffResult(
        against=summary.against,
        changes=tuple(changes),
        counts=dict(summary.counts),
        patch="".join(patch),
        truncated=summary.truncated,
        next_cursor=summary.next_cursor or None,
    )


def export_patch(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, target: ExportTarget, ignore: IgnoreSpec
) -> ExportResult:
    """Write the diff of `path` against the baseline as a patch file, as it streams, less what may not
    cross and what `ignore` leaves out."""
    written = 0
    with target.scratch_file(OUTPUT) as out:

        def write(text: str) -> None:
            nonlocal written
            data = text.encode("utf-8", "backslashreplace")
            out.write(data)
            written += len(data)

        crossing = PatchFilter(write)
        with stream_diff(engine, record, diff_args(paths=(path,), max_bytes=None, ignore=ignore)) as parts:
            for part in parts:
                if isinstance(part, str):
                    crossing.feed(part)
                else:
                    crossing.note(part)
        crossing.finish()
    target.publish(OUTPUT)
    files = max(0, crossing.entries - crossing.skipped_count)
    return ExportResult(target.shown_path, "patch", files, written, tuple(crossing.skipped), crossing.skipped_count)
