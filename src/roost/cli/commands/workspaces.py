"""`roost workspace create|list|status|update|logs|delete|stop|start|restart`.

Imports: cli siblings, client, models and the standard library.
"""

from __future__ import annotations

import argparse

from roost.cli.commands.common import key_values, sdk
from roost.cli.commands.network import network_lines
from roost.cli.output import emit_json, shown, table, warn, workspace_hint, workspace_json
from roost.cli.progress import ProgressFn, progress_for
from roost.client import Roost, Workspace
from roost.models import WorkspaceInfo


def _backend_label(info: WorkspaceInfo) -> str:
    return info.backend if info.isolated else f"{info.backend} (NOT isolated)"


def _describe(info: WorkspaceInfo) -> str:
    rows = [
        ("id", info.id),
        ("name", info.name or "-"),
        ("env", info.env),
        ("backend", _backend_label(info)),
        ("state", info.state),
        ("health", info.health or "-"),
        *((("hint", hint),) if (hint := workspace_hint(info)) else ()),
        ("created", info.created_at),
        ("expires", f"{info.expires_at} (in {time_left(info.expires_in_seconds)})" if info.expires_at else "never"),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(info.labels.items())) or "-"),
        *((("parent", _parent(info)),) if info.parent else ()),
        ("execs", str(info.exec_count)),
        *(
            (("secrets", ", ".join(f"{n} ({','.join(m)})" for n, m in sorted(info.secrets.items()))),)
            if info.secrets
            else ()
        ),
    ]
    for what, counts in (("services", info.services), ("shells", info.shells)):
        if counts is not None:
            rows.append((what, ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"))
    lines = [f"{key:<8} {shown(value)}" for key, value in rows]
    if info.network is not None:
        lines += network_lines(info.network)
    if info.protections:
        lines.append("protections")
        lines += [f"  {'on ' if p.active else 'OFF'} {p.name:<15} {shown(p.detail)}" for p in info.protections]
    return "\n".join(lines)


def _parent(info: WorkspaceInfo) -> str:
    """Where a forked workspace came from: its parent, and the snapshot of it when one was named."""
    return f"{info.parent} (snapshot {info.forked_from})" if info.forked_from else str(info.parent)


def _not_enforced(info: WorkspaceInfo) -> list[str]:
    """What the workspace was promised but this host does not enforce (mock's lack of isolation has its own label)."""
    if not info.isolated:
        return []
    return [f"{p.name} is not enforced: {p.detail}" for p in info.protections if not p.active]


def create(args: argparse.Namespace) -> int:
    roost = sdk(args)
    with progress_for(args.json or args.id_only, f"prepare {args.env_name}") as progress:
        workspace = _create(roost, args, progress)
    for message in roost.warnings:
        warn(message)
    info = workspace.info()
    for message in _not_enforced(info):
        warn(message)
    if args.id_only:
        print(workspace.id)
        return 0
    if args.json:
        emit_json(workspace_json(info))
    else:
        name = f" ({info.name})" if info.name else ""
        print(shown(f"created {info.id}{name}: {info.env} on {_backend_label(info)}"))
    return 0


def _create(roost: Roost, args: argparse.Namespace, progress: ProgressFn | None) -> Workspace:
    return roost.create_workspace(
        args.env_name,
        name=args.name,
        labels=key_values(args.label, "--label"),
        seed_path=args.seed_path,
        ttl_seconds=args.ttl,
        backend=args.backend,
        vcpus=args.vcpus,
        mem_mib=args.mem_mib,
        pids=args.pids,
        network_policy=args.network_policy,
        allow=args.allow_host,
        publish=args.publish,
        secrets=args.secret,
        ephemeral=False,
        progress=progress,
    )


def list_workspaces(args: argparse.Namespace) -> int:
    filtered = bool(args.label or args.state or args.backend)
    infos = sdk(args).list_workspaces(labels=key_values(args.label, "--label"), state=args.state, backend=args.backend)
    if args.json:
        emit_json({"workspaces": [workspace_json(i) for i in infos]})
        return 0
    if not infos:
        print(
            "no workspace matches" if filtered else "no workspaces (create one with `roost workspace create debian:12`)"
        )
        return 0
    rows = [
        [
            i.id,
            i.name or "-",
            i.env,
            _backend_label(i) if i.state != "corrupt" else "?",
            i.state,
            i.created_at[:19].replace("T", " ") or "-",
            time_left(i.expires_in_seconds),
            ",".join(f"{k}={v}" for k, v in sorted(i.labels.items())) or "-",
            i.parent or "-",
        ]
        for i in infos
    ]
    print(table(rows, ["ID", "NAME", "ENV", "BACKEND", "STATE", "CREATED", "TTL LEFT", "LABELS", "PARENT"]))
    for info in infos:
        if hint := workspace_hint(info):
            warn(f"{info.id} is {info.state} ({info.health}); {hint}")
    return 0


def time_left(seconds: int | None) -> str:
    """`-` (no TTL), `due`, or the time left to the minute (to the second under one)."""
    if seconds is None:
        return "-"
    if seconds <= 0:
        return "due"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status(args: argparse.Namespace) -> int:
    info = sdk(args).workspace(args.workspace).info()
    if args.json:
        emit_json(workspace_json(info))
    else:
        print(_describe(info))
    return 0


def update(args: argparse.Namespace) -> int:
    workspace = sdk(args).workspace(args.workspace)
    info = workspace.update(
        name=args.name,
        labels=key_values(args.label, "--label"),
        remove_labels=args.unlabel,
        ttl_seconds=args.ttl,
        clear_ttl=args.no_ttl,
    )
    if args.json:
        emit_json(workspace_json(info))
    else:
        print(_describe(info))
    return 0


def delete(args: argparse.Namespace) -> int:
    ws_id = sdk(args).delete_workspace(args.workspace, force=args.force)
    if args.json:
        emit_json({"id": ws_id, "deleted": True})  # as MCP's workspace_delete
    else:
        print(f"deleted {ws_id}")
    return 0


def stop(args: argparse.Namespace) -> int:
    info = sdk(args).workspace(args.workspace).stop()
    return _report(
        args, info, f"stopped {info.id} (/workspace is kept; `roost workspace start {info.id}` boots it again)"
    )


def start(args: argparse.Namespace) -> int:
    info = sdk(args).workspace(args.workspace).start()
    return _report(args, info, "\n".join([f"started {info.id}: {info.state}", *_comeback_lines(info)]))


def restart(args: argparse.Namespace) -> int:
    info = sdk(args).workspace(args.workspace).restart()
    first = f"restarted {info.id}: {info.state} (/workspace is kept)"
    return _report(args, info, "\n".join([first, *_comeback_lines(info)]))


def _comeback_lines(info: WorkspaceInfo) -> list[str]:
    """What a start brought back: the services kept by their restart policy, and the shells it did not."""
    report = info.last_start
    if report is None:
        return []
    lines = [f"services back: {', '.join(report.services)}"] if report.services else []
    lines += [f"service {f.name} did not come back: {shown(f.reason)}" for f in report.services_failed]
    if report.shells_closed is None:
        lines.append(
            f"shells do not come back: those open before show as lost (`roost workspace shell list {info.id}`)"
        )
    elif report.shells_closed:
        lines.append(f"shells do not come back: closed {', '.join(report.shells_closed)}")
    return lines


def _report(args: argparse.Namespace, info: WorkspaceInfo, line: str) -> int:
    if args.json:
        emit_json(workspace_json(info))
    else:
        print(line)
    return 0
