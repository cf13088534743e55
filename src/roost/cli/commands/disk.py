"""`roost workspace disk list|read|export|usage|check|grow`: a stopped workspace's disk, offline.

Imports: cli siblings (common, files, changes, output), client (the disk handle's type), models and the standard library.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from roost.cli.commands.changes import print_skipped
from roost.cli.commands.common import sdk
from roost.cli.commands.files import entry_row, print_content, print_entries
from roost.cli.output import emit_json, human_size, shown, started, table, warn
from roost.client import WorkspaceDisk
from roost.models import FileEntry

PAGE = 1000  # without --limit, the whole listing is fetched page by page and printed as it comes


def disk_list(args: argparse.Namespace) -> int:
    disk = sdk(args).workspace(args.workspace).disk
    if args.limit is not None:
        listing = disk.list(args.path, recursive=args.recursive, cursor=args.cursor, limit=args.limit)
        if args.json:
            emit_json(listing.to_dict())
            return 0
        print(table([entry_row(entry) for entry in listing.entries], ["MODE", "SIZE", "PATH"]), flush=True)
        if listing.next_cursor is not None:
            warn(f"more entries: continue with --cursor {listing.next_cursor}")
        return 0

    print_entries(started(_all_entries(disk, args)), args.json, lambda: args.path)
    return 0


def _all_entries(disk: WorkspaceDisk, args: argparse.Namespace) -> Iterator[FileEntry]:
    cursor = args.cursor
    while True:
        page = disk.list(args.path, recursive=args.recursive, cursor=cursor, limit=PAGE)
        yield from page.entries
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def disk_read(args: argparse.Namespace) -> int:
    disk = sdk(args).workspace(args.workspace).disk
    return print_content(args, disk.read(args.path, offset=args.offset, max_bytes=args.max_bytes))


def disk_export(args: argparse.Namespace) -> int:
    result = sdk(args).workspace(args.workspace).disk.export(args.path, args.output, fmt=args.format)
    if args.json:
        emit_json(result.to_dict())
        return 0
    print(
        f"exported {shown(args.path)} from the disk as {result.format} to {shown(result.path)} "
        f"({result.files} files, {human_size(result.bytes)})"
    )
    print_skipped(result)
    return 0


def disk_usage(args: argparse.Namespace) -> int:
    usage = sdk(args).workspace(args.workspace).disk.usage(args.path, top=args.top)
    if args.json:
        emit_json(usage.to_dict())
        return 0
    print(f"{shown(usage.path)}: {human_size(usage.total_bytes)} in {usage.files} files, {usage.dirs} directories")
    print(table([[human_size(d.bytes), str(d.files), shown(d.path)] for d in usage.top], ["SIZE", "FILES", "PATH"]))
    return 0


def disk_check(args: argparse.Namespace) -> int:
    result = sdk(args).workspace(args.workspace).disk.check(repair=args.repair)
    if args.json:
        emit_json(result.to_dict())
    else:
        print(result.report)
        state = "clean" if result.clean else "has errors"
        print(f"the disk {state}" + (" (repaired)" if result.repaired else ""))
    return 0 if result.clean else 1


def disk_grow(args: argparse.Namespace) -> int:
    result = sdk(args).workspace(args.workspace).disk.grow(args.size)
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"grew the disk from {human_size(result.old_size_bytes)} to {human_size(result.size_bytes)}")
    return 0
