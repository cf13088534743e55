"""`roost workspace cp SRC DEST`: copy files both ways, `docker cp` style, one side written `WS:PATH`.

Imports: cli siblings, errors and the standard library.
"""

from __future__ import annotations

import argparse
import dataclasses

from roost.cli.commands.changes import print_skipped
from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, human_size, shown
from roost.cli.progress import progress_for
from roost.errors import InvalidArgument

_HINT = "write the workspace side as WS:PATH, e.g. roost workspace cp ./src demo:/workspace/src"


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of a copy: a workspace path (`workspace` set) or a host path."""

    path: str
    workspace: str | None = None


def parse_side(text: str) -> Side:
    """`WS:PATH` names a workspace path; anything else (a `/`, `.` or no `:` before any `/`) is a host path.

    A host path holding a colon can be written `./a:b`.
    """
    head, colon, tail = text.partition(":")
    if colon and head and "/" not in head and not head.startswith("."):
        if not tail:
            raise InvalidArgument(f"{text!r} names no path in workspace {head!r}", hint=f"e.g. {head}:/workspace")
        return Side(tail, head)
    return Side(text)


def cp(args: argparse.Namespace) -> int:
    source, dest = parse_side(args.source), parse_side(args.dest)
    if source.workspace and dest.workspace:
        raise InvalidArgument("both sides name a workspace; cp copies between the host and one workspace", hint=_HINT)
    if dest.workspace:
        return _copy_in(args, source.path, dest)
    if source.workspace:
        return _copy_out(args, source, dest.path)
    raise InvalidArgument("neither side names a workspace", hint=_HINT)


def _copy_in(args: argparse.Namespace, host: str, dest: Side) -> int:
    assert dest.workspace is not None
    workspace = sdk(args).workspace(dest.workspace)
    with progress_for(args.json, f"cp {host}") as progress:
        result = workspace.copy_in(host, dest.path, progress=progress)
    if args.json:
        emit_json({"direction": "in", "workspace": workspace.id, **result.to_dict()})
    else:
        print(
            f"copied {result.files} files, {result.dirs} dirs, {result.symlinks} links "
            f"({human_size(result.bytes)}) to {workspace.id}:{shown(result.dest)}"
        )
    return 0


def _copy_out(args: argparse.Namespace, source: Side, host: str) -> int:
    assert source.workspace is not None
    workspace = sdk(args).workspace(source.workspace)
    result = workspace.copy_out(source.path, host)
    if args.json:
        emit_json({"direction": "out", "workspace": workspace.id, **result.to_dict()})
        return 0
    print(
        f"copied {workspace.id}:{shown(source.path)} to {shown(result.path)} ({result.files} files, {human_size(result.bytes)})"
    )
    print_skipped(result)
    return 0
