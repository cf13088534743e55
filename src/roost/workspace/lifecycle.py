"""Workspace lifecycle: create, inspect, update and delete (stop, start and restart are in
`workspace.power`, TTL reaping in `workspace.reaping`).

TTL reaping is `workspace.reaping`'s.

Create checks every option and, for a backend that needs one, gets the env's
image before anything exists on disk. It then writes a `creating` record and
only marks the workspace `running` once its agent answers, the seed is in and
the baseline snapshot is taken; any failure on the way (including Ctrl-C)
tears down what was started and removes the directory, so no half-made
workspace is left behind. A creator that cannot clean up (`kill -9`, a crash)
leaves its record `creating` with its owner lock gone: every later command
shows that workspace as `failed`, and delete removes it.

A workspace whose policy or published ports need it gets its network gateway
(`workspace.network`) once its agent is up; a taken host port is refused
before anything starts, and delete stops the gateway before the workspace.

Delete needs no free space: its backend stops every process of the workspace
(every backend does, when the record is lost), then the directory is moved
out of sight to be freed in the background (`store.trash`), and nothing is
written that it cannot do without.

Imports: arguments, backends, config, confinement, images, models, protocol, secrets.placeholders, store, workspace siblings, errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from roost import arguments
from roost.backends import Backend, CreateSpec, destroy_leftovers
from roost.config import images_dir
from roost.confinement import HostArg
from roost.errors import ConflictError, InvalidArgument, RoostError, StorageError, WorkspaceError
from roost.images.build import ProgressFn
from roost.images.cache import ImageCache
from roost.images.resolve import resolve_env
from roost.models import WorkspaceInfo
from roost.protocol.ops.services import ServiceListArgs, ServiceState
from roost.protocol.ops.shells import ShellListArgs, ShellState
from roost.protocol.ops.snapshots import BASELINE, SnapshotCreateArgs, SnapshotReceiveArgs, SnapshotRecord
from roost.protocol.ops.transfer import ArchiveImportArgs, ArchiveImportResult
from roost.secrets.placeholders import new_salt
from roost.store import expiry
from roost.store.full_disk import state_write
from roost.store.history import ExecHistory
from roost.store.locks import HeldLock
from roost.store.records import BootRecord, WorkspaceRecord, parse_time, utc_now
from roost.store.states import CREATING, DELETING, FAILED, RUNNING, UNHEALTHY
from roost.workspace import boot_images, recovery, revival
from roost.workspace import network as gateway
from roost.workspace.engine import Engine
from roost.workspace.network_request import NetworkRequest, check_supported, network_request
from roost.workspace.secrets import attachments
from roost.workspace.transfer import tar_stream

# What `run` puts on its throwaway workspace, so one its process left behind
# (killed before it could delete it) is recognisable and reaped.
RUN_LABEL = "roost.run"
RUN_TTL_SECONDS = 300


@dataclass(frozen=True)
class CreateOptions:
    env: str
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    seed_path: HostArg | None = None
    ttl_seconds: int | None = None
    backend: str | None = None
    vcpus: int | None = None
    mem_mib: int | None = None
    pids: int | None = None
    network_policy: str = "off"
    allow: Sequence[str] | None = None
    publish: Sequence[str | int] | None = None
    progress: ProgressFn | None = None
    # `NAME[:MODE]` each: secrets of the host's store to attach (see `workspace.secrets`).
    secrets: Sequence[str] = ()
    # A fork's child (`workspace.forking`): its parent, the snapshot it came from, the services to keep,
    # and where its baseline and /workspace come from.
    parent: str | None = None
    forked_from: str | None = None
    kept_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline: BaselineSource | None = None


class BaselineSource(Protocol):
    """A baseline a new workspace takes instead of a snapshot of its seed (a fork's: `workspace.forking`)."""

    def prepare(self, ws_dir: Path) -> None:
        """Set up what the workspace's agent needs on the host side, once its agent is up."""
        ...

    def chunks(self) -> Iterable[bytes]:
        """The snapshot bundle (`snapshot.receive`'s upload), afresh on each call."""
        ...


def _validate(options: CreateOptions, home: Path) -> tuple[dict[str, int], NetworkRequest]:
    """Check every option before anything exists on disk; return the resources and network asked for.

    Raises:
        RoostError: env_not_found, or invalid_argument naming the bad option and its valid range.
    """
    if not isinstance(options.env, str) or not options.env:
        raise InvalidArgument(f"env must be an environment name, not {options.env!r}", hint="e.g. debian:12")
    resolve_env(options.env, ImageCache(images_dir(home)))
    if options.name is not None:
        arguments.workspace_name(options.name)
    arguments.labels(options.labels)
    if options.ttl_seconds is not None:
        arguments.ttl_seconds(options.ttl_seconds)
    resources = arguments.resources(options.vcpus, options.mem_mib, options.pids)
    return resources, network_request(options.network_policy, options.allow, options.publish)


def _expiry(ttl_seconds: int | None) -> str | None:
    if ttl_seconds is None:
        return None
    return (datetime.now(UTC) + timedelta(seconds=ttl_seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Created:
    """A new workspace: its record, any backend warning, and its owner lock when the caller keeps it."""

    record: WorkspaceRecord
    warning: str | None
    owner: HeldLock | None = None


def create(engine: Engine, options: CreateOptions, *, keep_owner: bool = False) -> Created:
    """Create and boot a workspace.

    This process owns the workspace while it is being created; with
    `keep_owner` it stays the owner until the caller releases `Created.owner`
    (reaping never removes a workspace whose owner is alive).

    Raises:
        RoostError: bad options, unknown env, missing seed, name taken, disk_full, or a backend failure.
    """
    resources, network = _validate(options, engine.home)
    seed = tar_stream(options.seed_path, home=engine.home) if options.seed_path is not None else None
    backend, warning = engine.select_backend(options.backend)
    # Accepting a policy the backend cannot enforce would be a silent lie about isolation.
    check_supported(backend, network)
    attached = attachments(engine.home, backend, network.policy.mode, options.secrets)
    gateway.reserve(network.ports)
    # Before any record exists: a long build or a failed pull leaves nothing behind.
    image = boot_images.for_create(engine.home, backend, options.env, options.progress)
    ws_id: str | None = None
    owner: HeldLock | None = None
    boot: BootRecord | None = None
    try:
        with engine.store.global_lock():
            _check_name_free(engine, options.name)
            ws_id = engine.store.new_id()
            ws_dir = engine.store.create_dir(ws_id)
            owner = engine.store.claim_owner(ws_id)
            with engine.store.lock(ws_id):
                record = _new_record(ws_id, options, backend.name, resources, image.key, network)
                engine.store.save(record.replace(secrets=attached, secret_salt=new_salt()))
            _note_expiry(engine, record.expires_at)
        trusted_ca = gateway.trusted_ca(engine, ws_id, network.policy)
        spec = CreateSpec(
            ws_id,
            options.env,
            resources,
            network.policy.mode,
            image.rootfs,
            image.guest_image,
            trusted_ca,
            agent_python=image.agent_python,
            layers=image.layers,
            env_vars=image.env_vars,
        )
        with state_write("the workspace's files"):
            boot = backend.create(ws_dir, spec)
        record = engine.store.update(ws_id, lambda r: r.replace(boot=boot))
        # Once the agent is up: the gateway joins the namespaces of one of its processes.
        record = engine.store.update(ws_id, lambda r: gateway.bring_up(engine, r))
        if seed is not None:
            engine.call(record, ArchiveImportArgs(), upload=seed).result_as(ArchiveImportResult)
        # What diff, export --format patch and reset compare against: a fork's child takes its parent's.
        if options.baseline is not None:
            options.baseline.prepare(ws_dir)
            engine.call(record, SnapshotReceiveArgs(name=BASELINE), upload=options.baseline.chunks())
        else:
            engine.call(record, SnapshotCreateArgs(name=BASELINE)).result_as(SnapshotRecord)
        record = engine.store.update(ws_id, lambda r: r.moved_to(RUNNING))
    except BaseException:
        if ws_id is not None:
            _undo_create(engine, backend, ws_id, boot)
        if owner is not None:
            owner.release()
        raise
    assert owner is not None
    if not keep_owner:
        owner.release()
        owner = None
    return Created(record, warning, owner)


def _new_record(
    ws_id: str,
    options: CreateOptions,
    backend: str,
    resources: dict[str, int],
    image: str | None,
    network: NetworkRequest,
) -> WorkspaceRecord:
    """The record of a workspace being created, before its backend boots it."""
    now = utc_now()
    return WorkspaceRecord(
        id=ws_id,
        env=options.env,
        backend=backend,
        state=CREATING,
        created_at=now,
        updated_at=now,
        name=options.name,
        labels=dict(options.labels),
        ttl_seconds=options.ttl_seconds,
        expires_at=_expiry(options.ttl_seconds),
        resources=resources,
        network_policy=network.policy,
        ports=tuple((port, None) for port in network.ports),
        image=image,
        parent=options.parent,
        forked_from=options.forked_from,
        kept_services=dict(options.kept_services),
    )


def _check_name_free(engine: Engine, name: str | None) -> None:
    """Raises: ConflictError: name_taken. The caller holds the global lock."""
    if name is not None and any(isinstance(r, WorkspaceRecord) and r.name == name for r in engine.store.records()):
        raise ConflictError(
            f"a workspace named {name!r} already exists",
            code="name_taken",
            hint="pick another name, or delete the workspace that has it",
        )


def _undo_create(engine: Engine, backend: Backend[Any], ws_id: str, boot: BootRecord | None) -> None:
    """Tear down a create that failed: every process, then the directory.

    What cannot be torn down is left in place rather than hidden: its record
    stays `creating` with no owner, so every list shows it as failed.
    """
    engine.forget(ws_id)
    with contextlib.suppress(RoostError):
        gateway.take_down(engine, engine.store.load(ws_id))
    with contextlib.suppress(RoostError):
        backend.destroy(engine.store.dir(ws_id), ws_id, boot)
        backend.discard_files(engine.store.dir(ws_id), boot)
        engine.store.remove(ws_id)


def _state_counts(
    engine: Engine, record: WorkspaceRecord, listing: ServiceListArgs | ShellListArgs
) -> dict[str, int] | None:
    counts: dict[str, int] = {}
    state_type: type[ServiceState | ShellState] = ServiceState if isinstance(listing, ServiceListArgs) else ShellState
    try:
        with engine.records(record, listing) as items:
            for item in items.records_as(state_type):
                counts[item.state] = counts.get(item.state, 0) + 1
    except RoostError:
        return None  # the agent cannot say; health already tells why
    return counts


def info(engine: Engine, record: WorkspaceRecord, *, probe: bool = True) -> WorkspaceInfo:
    """The user-facing view of a record, probing health when asked.

    A running workspace's agent is asked how many services and shells are in each state, whichever
    call the view is for (create, status, list, update, start), so each gives the same shape; they
    are None only for a workspace that is not running, or whose agent cannot say.
    """
    if probe:
        record = engine.check_health(record)
    running = record.state == RUNNING
    services = _state_counts(engine, record, ServiceListArgs()) if running else None
    shells = _state_counts(engine, record, ShellListArgs()) if running else None
    backend = engine.backend(record)
    return WorkspaceInfo(
        id=record.id,
        name=record.name,
        env=record.env,
        backend=record.backend,
        isolated=backend.isolated,
        state=record.state,
        created_at=record.created_at,
        labels=dict(record.labels),
        ttl_seconds=record.ttl_seconds,
        expires_at=record.expires_at,
        health=_health(record),
        exec_count=max(record.exec_count, ExecHistory(engine.store.dir(record.id)).last_id()),
        services=services,
        shells=shells,
        protections=backend.protections(record.boot),
        remedy=recovery.for_state(record.id, record.state),
        network=gateway.network_view(record),
        secrets={name: tuple(modes) for name, modes in record.secrets.items()},
        image=record.image,
        expires_in_seconds=expires_in(record),
        last_start=revival.last_start(record),
        parent=record.parent,
        forked_from=record.forked_from,
    )


def expires_in(record: WorkspaceRecord) -> int | None:
    """Whole seconds until the record's TTL is due (0 once it is); None when it has none."""
    if not record.expires_at:
        return None
    return max(0, int((parse_time(record.expires_at) - datetime.now(UTC)).total_seconds()))


def _health(record: WorkspaceRecord) -> str | None:
    if record.state in (UNHEALTHY, FAILED):
        return record.reason or "unknown reason"
    return "ok" if record.state == RUNNING else None


def corrupt_info(error: WorkspaceError) -> WorkspaceInfo:
    """How a workspace whose record cannot be read shows in listings."""
    return WorkspaceInfo(
        id=str(error.details.get("workspace", "?")),
        name=None,
        env="?",
        backend="?",
        isolated=False,
        state="corrupt",
        created_at="",
        labels={},
        ttl_seconds=None,
        expires_at=None,
        health=error.message if error.remedy is not None else f"{error.message} ({error.hint})",
        remedy=error.remedy,
    )


def update(
    engine: Engine,
    ws_id: str,
    *,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    remove_labels: tuple[str, ...] = (),
    ttl_seconds: int | None = None,
    clear_ttl: bool = False,
) -> WorkspaceRecord:
    """Change a workspace's name, labels or TTL under its lock.

    Raises:
        InvalidArgument: bad name, label or ttl.
        ConflictError: name_taken.
    """
    if name is not None:
        arguments.workspace_name(name)
    arguments.labels(labels)
    if ttl_seconds is not None:
        arguments.ttl_seconds(ttl_seconds)
    if not all(isinstance(key, str) for key in remove_labels):
        raise InvalidArgument("remove_labels must be a list of label keys", hint="e.g. ['team']")

    def change(record: WorkspaceRecord) -> WorkspaceRecord:
        new_labels = {k: v for k, v in record.labels.items() if k not in remove_labels}
        new_labels.update(labels or {})
        changes: dict[str, object] = {"labels": new_labels}
        if name is not None:
            changes["name"] = name
        if ttl_seconds is not None:
            changes.update(ttl_seconds=ttl_seconds, expires_at=_expiry(ttl_seconds))
        elif clear_ttl:
            changes.update(ttl_seconds=None, expires_at=None)
        return record.replace(**changes)

    if name is None:
        updated = engine.store.update(ws_id, change)
    else:
        updated = _renamed(engine, ws_id, name, change)
    if ttl_seconds is not None:
        with engine.store.global_lock():
            _note_expiry(engine, updated.expires_at)
    return updated


def _note_expiry(engine: Engine, expires_at: str | None) -> None:
    """Any command reaps a workspace once its TTL is due (`workspace.reaping`); the caller holds the global lock."""
    if expires_at is not None:
        expiry.lower(engine.store.home, parse_time(expires_at).timestamp())


def _renamed(
    engine: Engine, ws_id: str, name: str, change: Callable[[WorkspaceRecord], WorkspaceRecord]
) -> WorkspaceRecord:
    """`change` applied under the global lock, once no other workspace has `name`."""
    with engine.store.global_lock():
        for other in engine.store.records():
            if isinstance(other, WorkspaceRecord) and other.name == name and other.id != ws_id:
                raise ConflictError(
                    f"a workspace named {name!r} already exists",
                    code="name_taken",
                    hint="pick another name, or delete the workspace that has it",
                )
        return engine.store.update(ws_id, change)


def delete(engine: Engine, ref: str, *, force: bool = False) -> str:
    """Stop every process of a workspace and remove all its files; return its id.

    Works in every state (failed and unhealthy included) and on a full disk.
    With `force`, a workspace whose record is corrupt or missing is removed too.

    Raises:
        NotFound: workspace_not_found.
        WorkspaceError: workspace_corrupt (without force).
        StorageError: delete_incomplete when files could not be removed.
        BackendError: process_survived, cleanup_failed (the workspace stays, to delete again).
    """
    if force and ref in engine.store.ids():
        ws_id = ref
    else:
        ws_id = engine.store.resolve(ref)
    engine.forget(ws_id)
    with engine.store.lock(ws_id):
        try:
            record: WorkspaceRecord | None = engine.store.load(ws_id)
        except WorkspaceError:
            if not force:
                raise
            record = None
        if record is not None:
            # Only news for concurrent readers (writers wait on the lock): a full disk is no reason to stop.
            with contextlib.suppress(StorageError):
                engine.store.save(record.moved_to(DELETING))
            gateway.take_down(engine, record)  # its ports are free once delete returns
            backend = engine.backend(record)
            backend.destroy(engine.store.dir(ws_id), ws_id, record.boot)
            backend.discard_files(engine.store.dir(ws_id), record.boot)
        else:
            # The record is lost, and with it which backend ran the workspace: ask them all.
            destroy_leftovers(engine.store.dir(ws_id), ws_id, engine.home)
        engine.store.discard(ws_id)
    return ws_id


def list_records(engine: Engine) -> list[WorkspaceRecord | WorkspaceError]:
    return list(engine.store.records())
