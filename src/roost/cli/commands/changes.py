"""`roost workspace diff|export|snapshot create|list|delete|reset`.

Imports: cli siblings, client, models and the standard library.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from roost.cli.commands.common import sdk
from roost.cli.output import JsonStream, StreamedTable, emit_json, human_size, shown, started, table, warn
from roost.client import Streamed
from roost.models import DiffEntry, ExportResult

# CHANGE fits type_changed, KIND symlink, SIZE 1023.9 KiB; PATH and a note follow unpadded.
_STAT_WIDTHS = [12, 7, 10]
PATCH_PIECE = 64 * 1024
CUT_WARNING = "the diff was cut; narrow it with --path, raise --max-bytes, or export --format patch"


def _stat_row(change: DiffEntry) -> list[str]:
    size = "-" if change.new_size is None else human_size(change.new_size)
    note = "binary" if change.binary else (f"-> {change.new_target}" if change.new_target else "")
    return [change.change, change.kind, size, change.path, note]


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def _ignore_rules(args: argparse.Namespace) -> dict[str, Any]:
    """`--exclude`, `--gitignore` and `--include-git-dir` as the SDK's keyword arguments."""
    return {"exclude": args.exclude, "gitignore": args.gitignore, "include_git_dir": args.include_git_dir}


def diff(args: argparse.Namespace) -> int:
    """The diff is printed as it arrives, however large (`--json` too: one document, streamed)."""
    ws = sdk(args).workspace(args.workspace)
    ignore = _ignore_rules(args)
    if args.stat:
        with ws.diff_entries(against=args.against, paths=args.path, **ignore) as entries:
            changed = started(entries)
            if args.json:
                return _json_document(args, (entry.to_dict() for entry in changed), entries, lambda: ())
            rows = StreamedTable(["CHANGE", "KIND", "SIZE", "PATH", ""], _STAT_WIDTHS)
            for entry in changed:
                rows.row(_stat_row(entry))
            counts = entries.summary.get("counts", {})
        print(_counts_line(counts) if rows.rows else f"no changes since {args.against}")
        return 0
    with ws.diff_stream(against=args.against, paths=args.path, max_bytes=args.max_bytes, **ignore) as parts:
        items = started(parts)
        if args.json:
            # The changes come first in the document, the patch text after: it waits in a spooled file.
            with tempfile.SpooledTemporaryFile(max_size=PATCH_PIECE * 16, mode="w+", encoding="utf-8") as spool:

                def changes() -> Iterator[dict[str, Any]]:
                    for part in items:
                        if isinstance(part, DiffEntry):
                            yield part.to_dict()
                        else:
                            spool.write(part)

                def patch() -> Iterator[str]:
                    spool.seek(0)
                    yield from iter(lambda: spool.read(PATCH_PIECE), "")

                return _json_document(args, changes(), parts, patch)
        listed = 0
        for part in items:
            if isinstance(part, DiffEntry):
                listed += 1
            else:
                sys.stdout.write(part)
        sys.stdout.flush()
        truncated = bool(parts.summary.get("truncated"))
    if not listed:
        print(f"no changes since {args.against}")
    if truncated:
        warn(CUT_WARNING)
    return 0


def _json_document(
    args: argparse.Namespace,
    changes: Iterator[dict[str, Any]],
    result: Streamed[Any],
    patch: Callable[[], Iterable[str]],
) -> int:
    """`{"against", "changes", "counts", "next_cursor", "patch", "truncated"}` with the changes streamed;
    `patch()` is asked for its pieces once the changes are all out."""
    document = JsonStream()
    document.value("against", args.against)
    document.array("changes", changes)
    summary = result.summary
    document.value("counts", summary.get("counts", {}))
    document.value("next_cursor", None)
    document.text("patch", patch())
    document.value("truncated", bool(summary.get("truncated")))
    document.close()
    if summary.get("truncated"):
        warn(CUT_WARNING)
    return 0


def export(args: argparse.Namespace) -> int:
    result = (
        sdk(args).workspace(args.workspace).export(args.path, args.output, format=args.format, **_ignore_rules(args))
    )
    if args.json:
        emit_json(result.to_dict())
        return 0
    print(
        f"exported {shown(args.path)} as {result.format} to {shown(result.path)} ({result.files} files, "
        f"{human_size(result.bytes)})"
    )
    print_skipped(result)
    return 0


def print_skipped(result: ExportResult) -> None:
    """What the host-crossing rules left out of an export, if anything."""
    if result.skipped_count:
        print(f"skipped {result.skipped_count} entries that may not cross to the host:")
        print(table([[entry.path, entry.detail] for entry in result.skipped], ["PATH", "WHY"]))
        if result.skipped_count > len(result.skipped):
            print(f"... and {result.skipped_count - len(result.skipped)} more")


def snapshot_create(args: argparse.Namespace) -> int:
    snap = sdk(args).workspace(args.workspace).snapshots.create(args.name)
    if args.json:
        emit_json(snap.to_dict())
    else:
        stored = human_size(snap.stored_bytes or 0)
        print(f"snapshot {shown(snap.name)}: {snap.files} files, {human_size(snap.size_bytes)} ({stored} newly stored)")
    return 0


def snapshot_list(args: argparse.Namespace) -> int:
    snaps = sdk(args).workspace(args.workspace).snapshots.list()
    if args.json:
        emit_json({"snapshots": [s.to_dict() for s in snaps]})
    else:
        print(
            table(
                [[s.name, s.created_at, str(s.files), human_size(s.size_bytes)] for s in snaps],
                ["SNAPSHOT", "CREATED", "FILES", "SIZE"],
            )
        )
    return 0


def snapshot_delete(args: argparse.Namespace) -> int:
    sdk(args).workspace(args.workspace).snapshots.delete(args.name)
    if args.json:
        emit_json({"deleted": args.name})
    else:
        print(f"deleted snapshot {shown(args.name)}")
    return 0


def reset(args: argparse.Namespace) -> int:
    result = sdk(args).workspace(args.workspace).reset(snapshot=args.snapshot)
    if args.json:
        emit_json(result.to_dict())
        return 0
    if result.stopped_services:
        print(shown(f"stopped services: {', '.join(result.stopped_services)}"))
    if result.closed_shells:
        print(shown(f"closed shells: {', '.join(result.closed_shells)}"))
    print(f"reset to {shown(result.snapshot)}: {result.restored} restored, {result.removed} removed")
    return 0
