"""Workspace fork: new workspaces that each hold a parent's /workspace as it is now, or as one of its
snapshots holds it.

The parent's agent takes a snapshot (or names one) and streams it once as a
bundle, read from its content store (never the live tree, so the parent
runs on, paused for nothing but the snapshot). Where the backend lets the
host reach and protect the stores (`Backend.content_store`), the bundle is
the manifest alone and the parent's packs are linked into each child's
store (`shared_packs`): the contents are stored once for them all. Else the
bundle carries each content once. It is spooled to an unnamed file under
the roost home, and each child is created as any workspace is, on the parent's backend with its env, limits, TTL and network
policy, and its own id, hostname, machine-id and keys; it takes the bundle
as its baseline and /workspace, and starts the services its parent keeps by
a restart policy. What a child does not take, by design: open shells
(running processes), published ports (a host port serves one workspace) and
secrets not named again.

Every argument is checked before anything is made, and a failure on the way
deletes the children already made: a fork makes all its children or none.
Each child owns its copy of the tree, so deleting the parent, or the
snapshot a child came from, never touches a child.

Imports: arguments, backends (StoreAccess), errors, models, protocol (snapshot messages), store, workspace siblings.
"""

from __future__ import annotations

import contextlib
import os
import secrets as token
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from roost import arguments
from roost.backends import StoreAccess
from roost.errors import ConflictError, RoostError
from roost.images.build import ProgressFn
from roost.models import ForkResult, WorkspaceInfo
from roost.protocol.ops.snapshots import (
    SnapshotCreateArgs,
    SnapshotDeleteArgs,
    SnapshotSendArgs,
    SnapshotSendResult,
)
from roost.store.full_disk import state_write
from roost.store.records import WorkspaceRecord
from roost.workspace import lifecycle, revival, services
from roost.workspace.engine import Engine
from roost.workspace.secrets import attachments, parse_attachment
from roost.workspace.shared_packs import link_packs

# Children created at once: each mostly waits on its agent (boot, restore), so a few overlap well.
PARALLEL_CREATES = 4
SPOOL_CHUNK = 1 << 20


@dataclass(frozen=True)
class ForkOptions:
    count: int = 1
    snapshot: str | None = None  # None: the parent's /workspace as it is at the call
    name_prefix: str | None = None  # children named PREFIX-1 .. PREFIX-N (None: unnamed)
    labels: dict[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()  # `NAME[:MODE]` each, attached to every child
    progress: ProgressFn | None = None  # hears (step, children made, children asked for)


def fork(engine: Engine, parent: WorkspaceRecord, options: ForkOptions) -> ForkResult:
    """Make `options.count` children of `parent`, all or none.

    Raises:
        RoostError: invalid_argument, name_taken, secret_not_found, snapshot_not_found, the parent's state
            (workspace_stopped, workspace_unhealthy) before anything is made; disk_full, or a child's
            create failure (the children made by then are deleted).
    """
    names = _checked(engine, parent, options)
    shells = revival.open_shells(engine, parent)
    access = engine.backend(parent).content_store()
    made_snapshot = options.snapshot is None
    snapshot = options.snapshot or f"fork-{token.token_hex(6)}"
    report = options.progress or _silent
    report("copying the parent's tree", 0, len(names))
    if made_snapshot:
        engine.call(parent, SnapshotCreateArgs(name=snapshot))
    try:
        with tempfile.TemporaryFile(dir=engine.home) as spool:

            def spooled(_channel: str, data: bytes) -> None:
                spool.write(data)

            with state_write("the fork's copy of the parent's tree"):
                # Where the stores can be shared, only the manifest travels: the packs are linked.
                asked = SnapshotSendArgs(name=snapshot, contents=access is None)
                sent = engine.call(parent, asked, on_data=spooled).result_as(SnapshotSendResult)
                spool.flush()
            shared = None if access is None else (engine.store.dir(parent.id), access)
            baseline = _ForkBaseline(spool.fileno(), sent.bundle_bytes, shared)
            children = _create_all(engine, parent, options, names, baseline)
    finally:
        if made_snapshot:
            with contextlib.suppress(RoostError):
                engine.call(parent, SnapshotDeleteArgs(name=snapshot))
    kept = {parse_attachment(spec)[0] for spec in options.secrets}
    return ForkResult(
        parent=parent.id,
        snapshot=options.snapshot,
        files=sent.files,
        size_bytes=sent.size_bytes,
        workspaces=tuple(children),
        shells_not_copied=len(shells or ()),
        ports_not_copied=len(parent.ports),
        secrets_not_copied=tuple(sorted(set(parent.secrets) - kept)),
    )


def _checked(engine: Engine, parent: WorkspaceRecord, options: ForkOptions) -> list[str | None]:
    """The children's names, once every option is known good.

    Raises:
        RoostError: invalid_argument, name_taken, secret_not_found, secret_mode_unsupported.
    """
    count = arguments.whole_number(options.count, "count", 1, arguments.MAX_FORK_CHILDREN, example=3)
    if options.snapshot is not None:
        arguments.snapshot_name(options.snapshot)
    arguments.labels(options.labels)
    attachments(engine.home, engine.backend(parent), parent.network_policy.mode, options.secrets)
    if options.name_prefix is None:
        return [None] * count
    names = [arguments.workspace_name(f"{options.name_prefix}-{n}") for n in range(1, count + 1)]
    used = {r.name for r in engine.store.records() if isinstance(r, WorkspaceRecord) and r.name is not None}
    taken = sorted(used & set(names))
    if taken:
        raise ConflictError(
            f"workspaces named {', '.join(repr(n) for n in taken)} already exist",
            code="name_taken",
            hint="pick another name prefix, or delete the workspaces that have those names",
        )
    return list(names)


@dataclass(frozen=True)
class _ForkBaseline:
    """What each child takes as its baseline: the bundle, spooled once (each child reads its own pass
    over it), and the parent's packs linked into the child's store first where they are shared."""

    fd: int
    size: int
    shared: tuple[Path, StoreAccess] | None

    def prepare(self, ws_dir: Path) -> None:
        if self.shared is not None:
            parent_dir, access = self.shared
            link_packs(parent_dir, ws_dir, access)

    def chunks(self) -> Iterator[bytes]:
        offset = 0
        while offset < self.size:
            piece = os.pread(self.fd, min(SPOOL_CHUNK, self.size - offset), offset)
            if not piece:
                raise OSError(f"the fork's spooled bundle ended {self.size - offset} bytes early")
            offset += len(piece)
            yield piece


def _create_all(
    engine: Engine, parent: WorkspaceRecord, options: ForkOptions, names: list[str | None], baseline: _ForkBaseline
) -> list[WorkspaceInfo]:
    """Create every child, a few at once; on any failure (Ctrl-C included) delete those made, then raise."""
    pool = ThreadPoolExecutor(max_workers=min(PARALLEL_CREATES, len(names)), thread_name_prefix="fork")
    futures: list[Future[WorkspaceInfo]] = []
    report = options.progress or _silent
    try:
        futures = [pool.submit(_create_child, engine, parent, options, name, baseline) for name in names]
        for made, future in enumerate(as_completed(futures), start=1):
            report(f"made {future.result().id}", made, len(names))
        children = [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is None:
                with contextlib.suppress(RoostError):
                    lifecycle.delete(engine, future.result().id, force=True)
        raise
    pool.shutdown(wait=True)
    return children


def _create_child(
    engine: Engine, parent: WorkspaceRecord, options: ForkOptions, name: str | None, baseline: _ForkBaseline
) -> WorkspaceInfo:
    policy = parent.network_policy
    asked = parent.resources
    created = lifecycle.create(
        engine,
        lifecycle.CreateOptions(
            env=parent.env,
            name=name,
            labels=dict(options.labels),
            ttl_seconds=parent.ttl_seconds,
            backend=parent.backend,
            vcpus=asked.get("vcpus"),
            mem_mib=asked.get("mem_mib"),
            pids=asked.get("pids"),
            network_policy=policy.mode,
            allow=[d.text for d in policy.allow] if policy.mode == "allowlist" else None,
            secrets=options.secrets,
            parent=parent.id,
            forked_from=options.snapshot,
            kept_services=services.kept_without_ports(parent.kept_services),
            baseline=baseline,
        ),
    )
    record = created.record
    if record.kept_services:
        record = revival.revive(engine, record)
    return lifecycle.info(engine, record, probe=False)


def _silent(step: str, done: int, total: int) -> None:
    """The progress of a fork nobody watches."""
