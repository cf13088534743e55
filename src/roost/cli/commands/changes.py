"""`roost workspace diff|export|snapshot create|list|delete|reset`.

Imports: cli siblings, client, models and the standard library.
"""

from __future__ import annotations

import argparse
import sys

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, human_size, shown, table, warn


def diff(args: argparse.Namespace) -> int:
    result = (
        sdk(args)
        .workspace(args.workspace)
        .diff(
            against=args.against,
            paths=args.path,
            stat=args.stat,
            max_bytes=args.max_bytes,
            exclude=args.exclude,
            gitignore=args.gitignore,
            include_git_dir=args.include_git_dir,
        )
    )
    if args.json:
        emit_json(result.to_dict())
        return 0
    if not result.changes:
        print(f"no changes since {result.against}")
        return 0
    if args.stat:
        rows = []
        for c in result.changes:
            size = "-" if c.new_size is None else human_size(c.new_size)
            note = "binary" if c.binary else (f"-> {c.new_target}" if c.new_target else "")
            rows.append([c.change, c.kind, size, c.path, note])
        print(table(rows, ["CHANGE", "KIND", "SIZE", "PATH", ""]))
        print(", ".join(f"{n} {what}" for what, n in sorted(result.counts.items())))
        return 0
    sys.stdout.write(result.patch)
    if result.truncated:
        warn("the diff was cut; narrow it with --path, raise --max-bytes, or export --format patch")
    return 0


def export(args: argparse.Namespace) -> int:
    result = (
        sdk(args)
        .workspace(args.workspace)
        .export(
            args.path,
            args.output,
            format=args.format,
            exclude=args.exclude,
            gitignore=args.gitignore,
            include_git_dir=args.include_git_dir,
        )
    )
    if args.json:
        emit_json(result.to_dict())
        return 0
    print(
        f"exported {shown(args.path)} as {result.format} to {shown(result.path)} ({result.files} files, "
        f"{human_size(result.bytes)})"
    )
    if result.skipped_count:
        print(f"skipped {result.skipped_count} entries that may not cross to the host:")
        print(table([[entry.path, entry.detail] for entry in result.skipped], ["PATH", "WHY"]))
        if result.skipped_count > len(result.skipped):
            print(f"... and {result.skipped_count - len(result.skipped)} more")
    return 0


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
