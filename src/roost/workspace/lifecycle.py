"""Workspace lifecycle: create, inspect, update, delete, and TTL reaping.

Create writes a `creating` record first and only marks the workspace
`running` once its agent answers and the seed is in; any failure on the way
(including Ctrl-C) tears down what was started and removes the directory,
so no half-made workspace is left behind.

Imports: backends, images.catalog, store, workspace siblings, errors, models.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from roost.backends import CreateSpec, select_backend
from roost.backends.processes import kill_tree
from roost.config import images_dir
from roost.errors import ConflictError, InvalidArgument, NotFound, RoostError, WorkspaceError
from roost.images.build import ProgressFn
from roost.images.cache import ImageCache
from roost.images.catalog import env_spec
from roost.images.manager import ensure_image
from roost.models import WorkspaceInfo
from roost.protocol import Op
from roost.store.records import WorkspaceRecord, parse_time, utc_now, validate_name
from roost.workspace.runtime import Runtime
from roost.workspace.transfer import tar_stream

BASELINE = "baseline"
LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")
NETWORK_POLICIES = ("off", "egress", "egress+ports", "allowlist")


@dataclass(frozen=True)
class CreateOptions:
    env: str
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    seed_path: str | None = None
    ttl_seconds: int | None = None
    backend: str | None = None
    vcpus: int | None = None
    mem_mib: int | None = None
    network_policy: str = "off"
    progress: ProgressFn | None = None


TTL_HINT = "give a whole number of seconds above 0, e.g. 3600"


def validate_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key):
            raise InvalidArgument(f"invalid label key {key!r}", hint="use letters, digits and _ . - /")
        if not isinstance(value, str) or len(value) > 256:
            raise InvalidArgument(f"label {key!r} must be a string of at most 256 characters")
    return dict(labels)


def _validate(options: CreateOptions) -> None:
    env_spec(options.env)
    if options.name is not None:
        validate_name(options.name)
    validate_labels(options.labels)
    if options.ttl_seconds is not None and options.ttl_seconds <= 0:
        raise InvalidArgument("ttl must be a positive number of seconds", hint=TTL_HINT)
    for what, value in (("vcpus", options.vcpus), ("mem-mib", options.mem_mib)):
        if value is not None and value <= 0:
            raise InvalidArgument(f"{what} must be positive")
    if options.network_policy not in NETWORK_POLICIES:
        raise InvalidArgument(
            f"unknown network policy {options.network_policy!r}", hint=f"choose one of: {', '.join(NETWORK_POLICIES)}"
        )
    if options.network_policy != "off":
        # Accepting a policy we do not enforce would be a silent lie about isolation.
        raise InvalidArgument(
            f"network policy {options.network_policy!r} is not available yet: workspaces have no network",
            code="network_policy_unsupported",
            hint="use the default, off (network policies are a later milestone)",
        )


def _expiry(ttl_seconds: int | None) -> str | None:
    if ttl_seconds is None:
        return None
    return (datetime.now(UTC) + timedelta(seconds=ttl_seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create(rt: Runtime, options: CreateOptions) -> tuple[WorkspaceRecord, str | None]:
    """Create and boot a workspace; return its record and any backend warning.

    Raises:
        RoostError: bad options, unknown env, missing seed, name taken, or a backend failure.
    """
    _validate(options)
    seed = tar_stream(options.seed_path) if options.seed_path else None
    backend, warning = select_backend(options.backend or rt.requested_backend, rt.home)
    resources = {k: v for k, v in (("vcpus", options.vcpus), ("mem_mib", options.mem_mib)) if v is not None}
    rootfs = image_key = None
    if backend.needs_image:
        # Before any record exists: a long build or a failed pull leaves nothing behind.
        cache = ImageCache(images_dir(rt.home))
        image = ensure_image(cache, options.env, options.progress)
        rootfs, image_key = str(cache.shifted_rootfs(image.key, *backend.rootfs_id_offset(None))), image.key
    with rt.store.global_lock():
        if options.name is not None and any(
            isinstance(r, WorkspaceRecord) and r.name == options.name for r in rt.store.records()
        ):
            raise ConflictError(
                f"a workspace named {options.name!r} already exists",
                code="name_taken",
                hint="pick another --name or delete the old workspace",
            )
        ws_id = rt.store.new_id()
        ws_dir = rt.store.create_dir(ws_id)
        now = utc_now()
        record = WorkspaceRecord(
            id=ws_id,
            env=options.env,
            backend=backend.name,
            state="creating",
            created_at=now,
            updated_at=now,
            name=options.name,
            labels=dict(options.labels),
            ttl_seconds=options.ttl_seconds,
            expires_at=_expiry(options.ttl_seconds),
            resources=resources,
            network_policy=options.network_policy,
        )
        with rt.store.lock(ws_id):
            rt.store.save(record)
    runtime: dict[str, object] = {}
    try:
        spec = CreateSpec(ws_id, options.env, resources, options.network_policy, rootfs, image_key)
        runtime = backend.create(ws_dir, spec)
        record = rt.store.update(ws_id, lambda r: r.replace(runtime=runtime))
        if seed is not None:
            rt.call(record, Op.ARCHIVE_IMPORT, {"dest": "/workspace"}, upload=seed)
        # What diff, export --format patch and reset compare against.
        rt.call(record, Op.SNAPSHOT_CREATE, {"name": BASELINE})
        record = rt.store.update(ws_id, lambda r: r.replace(state="running"))
    except BaseException:
        rt.forget(ws_id)
        try:
            backend.destroy(ws_dir, ws_id, runtime)
            backend.discard_files(ws_dir, runtime)
        finally:
            rt.store.remove(ws_id)
        raise
    return record, warning


def _state_counts(rt: Runtime, record: WorkspaceRecord, op: str, key: str) -> dict[str, int] | None:
    try:
        items = rt.call(record, op).result.get(key, [])
    except RoostError:
        return None  # the agent cannot say; health already tells why
    counts: dict[str, int] = {}
    for item in items:
        counts[str(item.get("state"))] = counts.get(str(item.get("state")), 0) + 1
    return counts


def info(rt: Runtime, record: WorkspaceRecord, *, probe: bool = True, counts: bool = False) -> WorkspaceInfo:
    """The user-facing view of a record, probing health when asked.

    With `counts`, also asks the agent how many services and shells are in each state.
    """
    if probe:
        record = rt.check_health(record)
    running = record.state == "running"
    services = _state_counts(rt, record, Op.SERVICE_LIST, "services") if counts and running else None
    shells = _state_counts(rt, record, Op.SHELL_LIST, "shells") if counts and running else None
    backend = rt.backend(record)
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
        health=record.reason if record.state == "unhealthy" else ("ok" if record.state == "running" else None),
        exec_count=record.exec_count,
        services=services,
        shells=shells,
    )


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
        health=f"{error.message} ({error.hint})",
    )


def update(
    rt: Runtime,
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
        validate_name(name)
    validate_labels(labels or {})
    if ttl_seconds is not None and ttl_seconds <= 0:
        raise InvalidArgument("ttl must be a positive number of seconds", hint=TTL_HINT)

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
        return rt.store.update(ws_id, change)
    with rt.store.global_lock():
        for other in rt.store.records():
            if isinstance(other, WorkspaceRecord) and other.name == name and other.id != ws_id:
                raise ConflictError(
                    f"a workspace named {name!r} already exists",
                    code="name_taken",
                    hint="pick another --name or delete the old workspace",
                )
        return rt.store.update(ws_id, change)


def delete(rt: Runtime, ref: str, *, force: bool = False) -> str:
    """Stop every process of a workspace and remove all its files; return its id.

    With `force`, a workspace whose record is corrupt or missing is removed too.

    Raises:
        NotFound: workspace_not_found.
        WorkspaceError: workspace_corrupt (without force).
        BackendError: process_survived, cleanup_failed (the workspace stays, to delete again).
    """
    if force and ref in rt.store.ids():
        ws_id = ref
    else:
        ws_id = rt.store.resolve(ref)
    rt.forget(ws_id)
    with rt.store.lock(ws_id):
        try:
            record: WorkspaceRecord | None = rt.store.load(ws_id)
        except WorkspaceError:
            if not force:
                raise
            record = None
        if record is not None:
            rt.store.save(record.replace(state="deleting"))
            backend = rt.backend(record)
            backend.destroy(rt.store.dir(ws_id), ws_id, record.runtime)
            backend.discard_files(rt.store.dir(ws_id), record.runtime)
        else:
            # The record is lost: kill whatever still carries the workspace's marker.
            kill_tree(ws_id, None)
        rt.store.remove(ws_id)
    return ws_id


def stop(rt: Runtime, ws_id: str) -> WorkspaceRecord:
    """Shut a running (or unhealthy) workspace down, keeping /workspace; idempotent.

    Raises:
        ConflictError: workspace_busy while another command holds it.
    """
    rt.forget(ws_id)
    with rt.store.lock(ws_id):
        record = rt.store.load(ws_id)
        if record.state == "stopped":
            return record
        if record.state not in ("running", "unhealthy"):
            raise ConflictError(f"workspace {ws_id} is {record.state}", code="workspace_busy", hint="retry in a moment")
        runtime = rt.backend(record).stop(rt.store.dir(ws_id), record.runtime)
        record = record.replace(state="stopped", runtime=runtime, reason=None)
        rt.store.save(record)
        return record


def start(rt: Runtime, ws_id: str) -> WorkspaceRecord:
    """Boot a stopped workspace again from what it kept; a running one is left alone.

    Raises:
        NotFound: image_missing when its environment image was removed meanwhile.
        BackendError: the backend could not boot it (the record stays stopped).
    """
    with rt.store.lock(ws_id):
        record = rt.store.load(ws_id)
        if record.state == "running":
            return record
        if record.state != "stopped":
            raise ConflictError(
                f"workspace {ws_id} is {record.state}, not stopped",
                code="workspace_not_stopped",
                hint=f"stop it first with `roost workspace stop {ws_id}`",
            )
        backend = rt.backend(record)
        spec = CreateSpec(ws_id, record.env, dict(record.resources), record.network_policy)
        image_key = record.runtime.get("image")
        if backend.needs_image and isinstance(image_key, str):
            cache = ImageCache(images_dir(rt.home))
            if not cache.rootfs(image_key).is_dir():
                raise NotFound(
                    f"the image this workspace was made from ({record.env}) is no longer cached",
                    code="image_missing",
                    hint="its changes outside /workspace cannot be kept; export /workspace and create a new one",
                )
            rootfs = cache.shifted_rootfs(image_key, *backend.rootfs_id_offset(record.runtime))
            spec = dataclasses.replace(spec, rootfs=str(rootfs), image_key=image_key)
        runtime = backend.start(rt.store.dir(ws_id), spec, record.runtime)
        record = record.replace(state="running", runtime={**record.runtime, **runtime}, reason=None)
        rt.store.save(record)
        return record


def list_records(rt: Runtime) -> list[WorkspaceRecord | WorkspaceError]:
    return list(rt.store.records())


def reap_expired(rt: Runtime) -> list[str]:
    """Delete every workspace whose TTL has passed; return their ids."""
    now = datetime.now(UTC)
    reaped = []
    for record in rt.store.records():
        if isinstance(record, WorkspaceRecord) and record.expires_at and parse_time(record.expires_at) <= now:
            try:
                reaped.append(delete(rt, record.id))
            except RoostError:
                continue
    return reaped
