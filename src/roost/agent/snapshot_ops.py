"""Agent operations on snapshots: create, list, delete, diff against one, reset to one.

Imports: the agent's own modules, protocol and the standard library only.
"""

from __future__ import annotations

import os
from typing import Any

from roost.agent.context import Reply, RequestContext
from roost.agent.diff_text import binary_change, patch_for
from roost.agent.ops import AgentRuntime
from roost.agent.snapshots import BASELINE, Change, Snapshots, compare
from roost.agent.trees import SYMLINK, Entry
from roost.protocol import Code, OpError
from roost.protocol.messages import CH_DATA

SEND_CHUNK = 256 * 1024


def snapshots(runtime: AgentRuntime) -> Snapshots:
    return runtime.part("snapshots", lambda: Snapshots(runtime.state_dir, runtime.paths, runtime.scratch_dir))


def create_snapshot(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    store = snapshots(runtime)
    with store.lock:
        return Reply(store.create(ctx.arg_str("name")))


def list_snapshots(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    store = snapshots(runtime)
    names_only = ctx.arg_bool("names_only", False)
    with store.lock:
        return Reply({"snapshots": store.list(names_only)})


def delete_snapshot(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    store = snapshots(runtime)
    name = ctx.arg_str("name")
    with store.lock:
        store.delete(name)
    return Reply({"name": name, "deleted": True})


def reset(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    store = snapshots(runtime)
    name = ctx.arg_str("snapshot", BASELINE)
    with store.lock:
        result = store.reset(name)
    return Reply({"snapshot": name, **result})


def _filters(runtime: AgentRuntime, ctx: RequestContext) -> list[str]:
    raw = ctx.args.get("paths") or []
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise OpError(Code.INVALID_ARGUMENT, "'paths' must be a list of paths")
    return [runtime.paths.relative(p) for p in raw]


def _selected(path: str, filters: list[str]) -> bool:
    return not filters or any(f == "" or path == f or path.startswith(f + "/") for f in filters)


def _summary(change: Change, binary: bool) -> dict[str, Any]:
    entry = change.new or change.old
    assert entry is not None
    item: dict[str, Any] = {
        "path": change.path,
        "change": change.change,
        "kind": entry.kind,
        "old_size": change.old.size if change.old else None,
        "new_size": change.new.size if change.new else None,
        "old_mode": change.old.mode if change.old else None,
        "new_mode": change.new.mode if change.new else None,
        "binary": binary,
    }
    if entry.kind == SYMLINK or (change.old and change.old.kind == SYMLINK):
        item["old_target"] = change.old.target if change.old else None
        item["new_target"] = change.new.target if change.new else None
    return item


def diff(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    """Summary in the result; the patch text streamed on the data channel (capped at max_bytes)."""
    store = snapshots(runtime)
    against = ctx.arg_str("against", BASELINE)
    stat_only = ctx.arg_bool("stat", False)
    cap = ctx.args.get("max_bytes")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
        raise OpError(Code.INVALID_ARGUMENT, "max_bytes must be a positive integer or null")
    filters = _filters(runtime, ctx)
    with store.lock:
        base = store.load(against)
        now = store.current()
    changes = [c for c in compare(base, now) if _selected(c.path, filters)]

    def load(entry: Entry) -> bytes:
        if entry.kind == SYMLINK:
            return os.fsencode(entry.target or "")
        if entry.digest and store.blobs.has(entry.digest):
            return store.blobs.read(entry.digest)
        return store.read_current(entry.path)

    summary = []
    counts: dict[str, int] = {}
    sent = unsent = 0
    pending: list[str] = []
    truncated_files = 0
    cut_in: str | None = None  # the path whose patch the cap cut part-way
    for change in changes:
        binary = binary_change(change.old, change.new, load)
        summary.append(_summary(change, binary))
        counts[change.change] = counts.get(change.change, 0) + 1
        if stat_only:
            continue
        if cap is not None and sent >= cap:
            truncated_files += 1
            continue
        for piece in patch_for(change.path, change.change, change.old, change.new, load):
            # The cap holds inside one file's patch too: one huge file must not flood the caller.
            if cap is not None and sent >= cap:
                cut_in = change.path
                break
            pending.append(piece)
            sent += len(piece)
            unsent += len(piece)
            if unsent >= SEND_CHUNK:
                ctx.send(CH_DATA, "".join(pending).encode("utf-8", "surrogateescape"))
                pending.clear()
                unsent = 0
    if truncated_files or cut_in is not None:
        partial = f"the patch of {cut_in} is incomplete; " if cut_in is not None else ""
        pending.append(
            f"\n[... diff cut at {cap} bytes: {partial}{truncated_files} more changed path(s) not shown; "
            "narrow it with --path, or export it with --format patch ...]\n"
        )
    if pending:
        ctx.send(CH_DATA, "".join(pending).encode("utf-8", "surrogateescape"))
    truncated = truncated_files > 0 or cut_in is not None
    return Reply({"against": against, "changes": summary, "counts": counts, "truncated": truncated})
