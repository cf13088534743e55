"""`roost workspace file ...`, `sync push` and `patch apply`.

Imports: cli siblings, models, errors and the standard library.
"""

from __future__ import annotations

import argparse
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from roost.cli.commands.common import parse_mode, sdk
from roost.cli.output import JsonStream, StreamedTable, emit_json, human_size, shown, started, table, warn
from roost.errors import InvalidArgument, NotFound
from roost.models import FileContent, FileEntry


def _read_host(path: str, what: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{what} {path!r} does not exist", code="host_file_not_found", hint="check the path") from None
    except IsADirectoryError:
        raise InvalidArgument(f"{what} {path!r} is a directory", hint="give a file") from None
    except PermissionError:
        raise InvalidArgument(
            f"cannot read {what} {path!r}: permission denied", hint="check the file's permissions"
        ) from None


def entry_row(entry: FileEntry) -> list[str]:
    name = entry.path + ("/" if entry.type == "dir" else "")
    if entry.target is not None:
        name += f" -> {entry.target}"
    return [
        stat.filemode(entry.mode | {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}.get(entry.type, stat.S_IFREG)),
        human_size(entry.size),
        name,
    ]


# MODE is always 10 characters wide (drwxr-xr-x); SIZE at most 10 (1023.9 KiB).
LIST_WIDTHS = [10, 10]


def print_entries(items: Iterable[FileEntry], as_json: bool, path: Callable[[], object]) -> None:
    """Entries as they arrive, however many there are: a streamed table, or one JSON document, streamed,
    whose `path` (`path()`, asked once every entry has come) follows them."""
    if as_json:
        document = JsonStream()
        document.array("entries", (entry.to_dict() for entry in items))
        document.value("next_cursor", None)
        document.value("path", path())
        document.value("truncated", False)
        document.close()
        return
    rows = StreamedTable(["MODE", "SIZE", "PATH"], LIST_WIDTHS)
    for entry in items:
        rows.row(entry_row(entry))


def file_list(args: argparse.Namespace) -> int:
    with sdk(args).workspace(args.workspace).files.iter(args.path, recursive=args.recursive) as entries:
        print_entries(started(entries), args.json, lambda: entries.summary.get("path"))
    return 0


def file_stat(args: argparse.Namespace) -> int:
    entry = sdk(args).workspace(args.workspace).files.stat(args.path)
    if args.json:
        emit_json(entry.to_dict())
    else:
        print(table([entry_row(entry)], ["MODE", "SIZE", "PATH"]))
    return 0


def file_read(args: argparse.Namespace) -> int:
    content = sdk(args).workspace(args.workspace).files.read(args.path, offset=args.offset, max_bytes=args.max_bytes)
    return print_content(args, content)


def print_content(args: argparse.Namespace, content: FileContent) -> int:
    """A read's bytes to stdout or `--output` (or its JSON), and where to continue when it stopped short."""
    if args.json:
        emit_json(content.to_dict())
        return 0
    if args.output:
        Path(args.output).write_bytes(content.data)
    else:
        sys.stdout.buffer.write(content.data)
        sys.stdout.buffer.flush()
    if not content.eof:
        end = content.offset + content.length
        warn(f"read {content.length} of {content.size} bytes; continue with --offset {end}")
    return 0


def file_write(args: argparse.Namespace) -> int:
    if args.content is not None:
        data = args.content.encode()
    elif args.stdin:
        data = sys.stdin.buffer.read()
    else:
        data = _read_host(args.from_file, "file")
    result = sdk(args).workspace(args.workspace).files.write(args.path, data, mode=parse_mode(args.mode))
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"wrote {shown(result.path)} ({human_size(result.size)}, mode {result.mode:o})")
    return 0


def file_delete(args: argparse.Namespace) -> int:
    result = sdk(args).workspace(args.workspace).files.delete(args.path, recursive=args.recursive)
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"deleted {shown(result.path)}")
    return 0


def sync_push(args: argparse.Namespace) -> int:
    result = sdk(args).workspace(args.workspace).sync_push(args.source, dest=args.dest, delete=args.delete)
    if args.json:
        emit_json(result.to_dict())
    else:
        deleted = f", deleted {result.deleted}" if args.delete else ""
        print(
            f"pushed {result.files} files, {result.dirs} dirs, {result.symlinks} links "
            f"({human_size(result.bytes)}) into {shown(result.dest)}{deleted}"
        )
    return 0


def patch_apply(args: argparse.Namespace) -> int:
    text = (
        args.patch if args.patch is not None else _read_host(args.patch_file, "patch file").decode("utf-8", "replace")
    )
    result = sdk(args).workspace(args.workspace).apply_patch(text, dry_run=args.dry_run)
    if args.json:
        emit_json(result.to_dict())
        return 0
    verb = "would apply" if result.dry_run else "applied"
    for f in result.files:
        print(f"{verb}: {f.action:<8} {shown(f.path)} ({f.hunks} hunk{'s' if f.hunks != 1 else ''})")
    return 0
