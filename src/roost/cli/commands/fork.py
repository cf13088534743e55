"""`roost workspace fork WS`: new workspaces, each holding WS's /workspace as it is now (or a snapshot).

Imports: cli siblings, models and the standard library.
"""

from __future__ import annotations

import argparse

from roost.cli.commands.common import key_values, sdk
from roost.cli.output import emit_json, shown, workspace_json
from roost.cli.progress import progress_for
from roost.models import ForkResult


def fork(args: argparse.Namespace) -> int:
    workspace = sdk(args).workspace(args.workspace)
    with progress_for(args.json, f"fork {args.workspace}") as progress:
        forked = workspace.fork(
            args.count,
            snapshot=args.snapshot,
            name_prefix=args.name_prefix,
            labels=key_values(args.label, "--label"),
            secrets=args.secret,
            progress=progress,
        )
    if args.json:
        result = forked.result
        emit_json({**result.to_dict(), "workspaces": [workspace_json(child) for child in result.workspaces]})
    else:
        print(describe(forked.result))
    return 0


def describe(result: ForkResult) -> str:
    source = f"snapshot {result.snapshot}" if result.snapshot else "its state now"
    count = len(result.workspaces)
    lines = [
        f"forked {result.parent} ({source}: {_count(result.files, 'file')}, {_count(result.size_bytes, 'byte')}) "
        f"into {_count(count, 'workspace')}:"
    ]
    for child in result.workspaces:
        name = f" ({child.name})" if child.name else ""
        started = child.last_start.services if child.last_start else ()
        failed = child.last_start.services_failed if child.last_start else ()
        services = f"  services started: {', '.join(started)}" if started else ""
        services += "".join(f"  {f.name} did not start: {f.reason}" for f in failed)
        lines.append(shown(f"  {child.id}{name}{services}"))
    lines += _not_copied(result)
    return "\n".join(lines)


def _not_copied(result: ForkResult) -> list[str]:
    notes = []
    if result.shells_not_copied:
        notes.append(f"{result.shells_not_copied} open shell(s) (a shell is a running process; open new ones)")
    if result.ports_not_copied:
        notes.append(f"{result.ports_not_copied} published port(s) (a host port serves one workspace)")
    if result.secrets_not_copied:
        notes.append(f"secrets {', '.join(result.secrets_not_copied)} (name them again with --secret)")
    return [f"not copied: {note}" for note in notes]


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"
