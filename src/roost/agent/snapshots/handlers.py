"""Agent operations on snapshots: create, list, delete, diff against one, reset to one, send and receive one.

Imports: the request core, the agent's `fs` layer, this package, protocol and the standard library only.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs.ignore_filter import ignore_filter
from roost.agent.record_page import RecordPage
from roost.agent.snapshots.diff_text import Loader, binary_change, patch_for
from roost.agent.snapshots.named import Change, Snapshots, compare
from roost.agent.snapshots.trees import DIR, SYMLINK, Entry
from roost.agent.state import AgentState, Handler
from roost.protocol import Op
from roost.protocol.messages import CH_DATA
from roost.protocol.names import to_text
from roost.protocol.ops.snapshots import (
    BASELINE,
    DiffArgs,
    DiffRecord,
    DiffResult,
    ResetArgs,
    ResetResult,
    SnapshotCreateArgs,
    SnapshotDeleteArgs,
    SnapshotDeleteResult,
    SnapshotListArgs,
    SnapshotListResult,
    SnapshotReceiveArgs,
    SnapshotReceiveResult,
    SnapshotRecord,
    SnapshotSendArgs,
    SnapshotSendResult,
)
from roost.protocol.records import Key, path_key

# Patch text per record: big enough that a record's framing costs nothing, small enough to stream.
PATCH_RECORD_CHARS = 32 * 1024


def snapshots(agent: AgentState) -> Snapshots:
    return agent.part("snapshots", lambda: Snapshots(agent.state_dir, agent.paths, agent.scratch_dir))


def create_snapshot(agent: AgentState, args: SnapshotCreateArgs, ctx: RequestContext) -> HandlerResult:
    store = snapshots(agent)
    with store.lock:
        return HandlerResult(SnapshotRecord(**store.create(args.name)))


def list_snapshots(agent: AgentState, args: SnapshotListArgs, ctx: RequestContext) -> HandlerResult:
    """Stream the snapshots as records, the baseline first, then by creation time (`names_only`: by name)."""
    store = snapshots(agent)
    names_only = args.names_only
    page = RecordPage(ctx, args)
    with store.lock:
        listed = store.list(names_only)
    for snapshot in listed:
        rank = b"0" if snapshot["name"] == BASELINE else b"1"
        when = b"" if names_only else str(snapshot["created_at"]).encode()
        key = (rank, when, str(snapshot["name"]).encode())
        if not page.seen(key) and not page.add(key, SnapshotRecord(**snapshot)):
            break
    return HandlerResult(page.summary(SnapshotListResult))


def delete_snapshot(agent: AgentState, args: SnapshotDeleteArgs, ctx: RequestContext) -> HandlerResult:
    store = snapshots(agent)
    with store.lock:
        store.delete(args.name)
    return HandlerResult(SnapshotDeleteResult(name=args.name, deleted=True))


def send_snapshot(agent: AgentState, args: SnapshotSendArgs, ctx: RequestContext) -> HandlerResult:
    """Stream the snapshot as a bundle on the data channel, read from the store (never the live tree)."""
    store = snapshots(agent)
    sent = 0
    with store.lock:
        tree = store.load(args.name)
        for piece in store.bundle(args.name, with_contents=args.contents):
            ctx.send(CH_DATA, piece)
            sent += len(piece)
    totals = store.totals(tree)
    return HandlerResult(SnapshotSendResult(name=args.name, bundle_bytes=sent, **totals))


def receive_snapshot(agent: AgentState, args: SnapshotReceiveArgs, ctx: RequestContext) -> HandlerResult:
    """Take the uploaded bundle as the snapshot and make /workspace hold it (services and shells stopped first)."""
    store = snapshots(agent)
    with store.lock:
        agent.stop_children()
        received = store.receive(args.name, ctx.upload())
    return HandlerResult(
        SnapshotReceiveResult(
            name=args.name,
            files=received["files"],
            size_bytes=received["size_bytes"],
            stored_bytes=received["stored_bytes"],
            restored=received["restored"],
        )
    )


def reset(agent: AgentState, args: ResetArgs, ctx: RequestContext) -> HandlerResult:
    """Stop the services and close the shells (they would see files change under them), then
    restore /workspace to the snapshot; one call, one result naming what was stopped.

    Raises:
        OpError: snapshot_not_found (nothing is stopped then), invalid_argument.
    """
    store = snapshots(agent)
    name = args.snapshot
    with store.lock:
        store.load(name)  # a missing snapshot stops nothing
        stopped = agent.stop_children()
        counts = store.reset(name)
    result = ResetResult(
        snapshot=name,
        restored=counts["restored"],
        removed=counts["removed"],
        services_stopped=tuple(stopped["services"]),
        shells_closed=tuple(stopped["shells"]),
    )
    return HandlerResult(result)


def _selected(path: str, filters: list[str]) -> bool:
    return not filters or any(f == "" or path == f or path.startswith(f + "/") for f in filters)


def _summary(change: Change, binary: bool) -> DiffRecord:
    """One change's record."""
    entry = change.new or change.old
    assert entry is not None
    return DiffRecord(
        path=change.path,
        change=change.change,
        kind=entry.kind,
        old_size=change.old.size if change.old else None,
        new_size=change.new.size if change.new else None,
        old_mode=change.old.mode if change.old else None,
        new_mode=change.new.mode if change.new else None,
        binary=binary,
        old_target=change.old.target if change.old else None,
        new_target=change.new.target if change.new else None,
    )


class _PatchText:
    """Patch text sent as `{"patch": text}` records after its change, at most `cap` bytes per call (None: all)."""

    def __init__(self, page: RecordPage, cap: int | None) -> None:
        self._page = page
        self.cap = cap
        self.sent = 0
        self.cut_in: str | None = None  # the path whose patch the cap cut part-way

    @property
    def spent(self) -> bool:
        return self.cap is not None and self.sent >= self.cap

    def stream(self, pieces: Iterator[str]) -> bool:
        """Send `pieces` as they are made, until the cap (the last may pass it); whether all went.

        Holds one record's worth at a time, however large the file's patch.
        """
        pending: list[str] = []
        size = 0
        for piece in pieces:
            if self.spent:
                self.send(pending)
                return False
            pending.append(piece)
            size += len(piece)
            self.sent += len(piece.encode())
            if size >= PATCH_RECORD_CHARS:
                self.send(pending)
                pending, size = [], 0
        self.send(pending)
        return True

    def measure(self, pieces: Iterator[str]) -> tuple[list[str], bool]:
        """The pieces that fit in what is left (the last may pass it), held, not sent; whether all did."""
        kept: list[str] = []
        for piece in pieces:
            if self.spent:
                return kept, False
            kept.append(piece)
            self.sent += len(piece.encode())
        return kept, True

    def send(self, pieces: list[str]) -> None:
        text = "".join(pieces)
        for start in range(0, len(text), PATCH_RECORD_CHARS):
            self._page.attach(DiffRecord(patch=text[start : start + PATCH_RECORD_CHARS]))


def _page_change(page: RecordPage, text: _PatchText, key: Key, change: Change, load: Loader) -> bool:
    """Add `change` and its whole patch to a page; False when the page must end before it.

    Only a page's first patch is cut (and says so), or one patch larger than
    the budget would stop every page from moving on.
    """
    if not page.has_room() or text.spent:
        page.stop_before()
        return False
    pieces, whole = text.measure(patch_for(change.path, change.change, change.old, change.new, load))
    if not whole and page.count:
        page.stop_before()
        return False
    page.add(key, _summary(change, binary_change(change.old, change.new, load)))
    if not whole:
        text.cut_in = change.path
        pieces.append(
            f"\n[... the patch of {to_text(change.path)} is cut at {text.cap} bytes; "
            "read the file itself, or export the diff as a patch ...]\n"
        )
    text.send(pieces)
    return True


def _changes(store: Snapshots, args: DiffArgs, filters: list[str]) -> list[Change]:
    """The changes from snapshot `against` to the workspace now, in tree order, left to the request's rules."""
    against = args.against
    ignore = ignore_filter(args.ignore)
    with store.lock:
        base = store.load(against)
        now = store.current(prune=ignore, save=False)  # saved once the diff is answered
    if ignore is not None:  # the snapshot's side, judged by the rules the scan just read
        base = {path: entry for path, entry in base.items() if not ignore.excluded_path(path, entry.kind == DIR)}
    return [c for c in compare(base, now) if _selected(c.path, filters)]


def _content_loader(store: Snapshots) -> Loader:
    """What an entry holds: a link's target, the content a snapshot stored, else the workspace's file as it is now."""

    def load(entry: Entry) -> bytes:
        if entry.kind == SYMLINK:
            return os.fsencode(entry.target or "")
        if entry.digest and store.blobs.has(entry.digest):
            return store.blobs.read(entry.digest)
        return store.read_current(entry.path)

    return load


def diff(agent: AgentState, args: DiffArgs, ctx: RequestContext) -> HandlerResult:
    """Each change (in tree order) as a record, then its patch text as `{"patch": text}` records.

    `max_bytes` caps the patch text of the call. Without `limit` every change
    is listed and the patch is cut where the cap falls, with a marker saying
    what is missing. With `limit` (a page) the page ends before a change
    whose patch no longer fits, so the next page starts with it whole; only
    a page's first patch is ever cut. `counts` covers every change, not only
    the page's. Ignore rules (`exclude`, `gitignore`, `include_git_dir`)
    leave paths out of both sides: excluded directories are not even scanned.
    """
    store = snapshots(agent)
    stat_only, cap = args.stat, args.max_bytes
    page = RecordPage(ctx, args)
    text = _PatchText(page, cap)
    changes = _changes(store, args, [agent.paths.relative(p) for p in args.paths])
    counts = dict(Counter(change.change for change in changes))  # by first appearance, as they are listed
    load = _content_loader(store)
    unshown = 0  # changes listed without their patch (the cap was spent)
    for change in changes:
        key = path_key(change.path)
        if page.seen(key):
            continue
        if not stat_only and page.limit is not None:
            if not _page_change(page, text, key, change, load):
                break
            continue
        if not page.add(key, _summary(change, binary_change(change.old, change.new, load))):
            break
        if stat_only:
            continue
        if text.spent:
            unshown += 1
        elif not text.stream(patch_for(change.path, change.change, change.old, change.new, load)):
            text.cut_in = change.path
    if unshown or (text.cut_in is not None and page.limit is None):
        partial = f"the patch of {to_text(text.cut_in)} is incomplete; " if text.cut_in is not None else ""
        text.send(
            [
                f"\n[... diff cut at {cap} bytes: {partial}{unshown} more changed path(s) not shown; "
                "narrow it with --path, or export it with --format patch ...]\n"
            ]
        )
    truncated = unshown > 0 or text.cut_in is not None
    summary = page.summary(DiffResult, against=args.against, counts=counts, truncated=truncated)
    return HandlerResult(summary, after=store.save_index)


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.SNAPSHOT_CREATE: create_snapshot,
    Op.SNAPSHOT_LIST: list_snapshots,
    Op.SNAPSHOT_DELETE: delete_snapshot,
    Op.SNAPSHOT_SEND: send_snapshot,
    Op.SNAPSHOT_RECEIVE: receive_snapshot,
    Op.DIFF: diff,
    Op.RESET: reset,
}
