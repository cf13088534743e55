"""Stop, start and restart: a workspace's processes go and come back; /workspace stays.

`stop` takes a running or unhealthy workspace down (a dead agent is no
obstacle: the backend kills whatever the workspace left, services and
daemons included); `start` boots a stopped one over what it kept; `restart`
does both under one hold of the workspace's lock, and is the way out of
`unhealthy`. Stop takes the network gateway down (its ports are freed), start
brings it up again once the agent is up; then the services kept by their
restart policy start again (`workspace.revival`). A workspace whose create never finished (`failed`) can only be
deleted; one still being created is busy.

Imports: backends, store, workspace siblings, errors.
"""

from __future__ import annotations

from roost.backends import CreateSpec
from roost.errors import ConflictError, RoostError
from roost.store.records import WorkspaceRecord
from roost.store.states import CREATING, FAILED, RUNNING, STOPPED, UNHEALTHY
from roost.workspace import boot_images, recovery, revival
from roost.workspace import network as gateway
from roost.workspace.engine import Engine


def stop(engine: Engine, ws_id: str) -> WorkspaceRecord:
    """Shut a running (or unhealthy) workspace down, keeping /workspace; idempotent.

    Raises:
        ConflictError: workspace_busy while it is being created or deleted.
        WorkspaceError: workspace_failed.
    """
    shells = _shells_before_stop(engine, ws_id)
    with engine.store.lock(ws_id):
        return _stop(engine, engine.store.load(ws_id), shells)


def start(engine: Engine, ws_id: str) -> WorkspaceRecord:
    """Boot a stopped workspace again from what it kept; a running one is left alone.

    Raises:
        ConflictError: workspace_not_stopped for an unhealthy one (restart it), workspace_busy.
        WorkspaceError: workspace_failed.
        NotFound: image_missing when its environment image was removed meanwhile.
        BackendError: the backend could not boot it (the record stays stopped).
    """
    with engine.store.lock(ws_id):
        record = engine.store.load(ws_id)
        if record.state == RUNNING:
            return record
        if record.state == UNHEALTHY:
            raise ConflictError(
                f"workspace {ws_id} is unhealthy, not stopped: {record.reason or 'unknown reason'}",
                code="workspace_not_stopped",
                remedy=recovery.restart(ws_id),
            )
        if record.state != STOPPED:
            raise _refusal(engine, record)
        record = _start(engine, record)
    return revival.revive(engine, record)  # its services publish ports, which takes the lock


def restart(engine: Engine, ws_id: str) -> WorkspaceRecord:
    """Stop (whatever is left of) a running, unhealthy or stopped workspace, then start it.

    Raises:
        the errors of `stop` and `start`.
    """
    shells = _shells_before_stop(engine, ws_id)
    with engine.store.lock(ws_id):
        record = _start(engine, _stop(engine, engine.store.load(ws_id), shells))
    return revival.revive(engine, record)


def _shells_before_stop(engine: Engine, ws_id: str) -> list[str] | None:
    """The shells open in the workspace (None: it is not running, or its agent cannot say), asked
    before its lock is taken: a call that finds the agent gone records that under the lock. Its
    connection is closed after, as the stop ends the agent."""
    shells = revival.open_shells(engine, engine.store.load(ws_id))
    engine.forget(ws_id)
    return shells


def _stop(engine: Engine, record: WorkspaceRecord, shells: list[str] | None) -> WorkspaceRecord:
    """The caller holds the workspace's lock; `shells` were open in it (None: unknown)."""
    if record.state == STOPPED:
        return record
    if record.state not in (RUNNING, UNHEALTHY) or record.boot is None:
        raise _refusal(engine, record)
    record = gateway.take_down(engine, record)  # its ports are free while it is stopped
    boot = engine.backend(record).stop(engine.store.dir(record.id), record.boot)
    record = record.moved_to(STOPPED, boot=boot, reason=None, shells_at_stop=shells)
    engine.store.save(record)
    return record


def _start(engine: Engine, record: WorkspaceRecord) -> WorkspaceRecord:
    """The caller holds the workspace's lock; `record` is stopped."""
    if record.boot is None:
        raise _refusal(engine, record)
    backend = engine.backend(record)
    image = boot_images.for_start(engine.home, backend, record)
    trusted_ca = gateway.trusted_ca(engine, record.id, record.network_policy)
    spec = CreateSpec(
        record.id,
        record.env,
        dict(record.resources),
        record.network_policy.mode,
        image.rootfs,
        None,
        trusted_ca,
        agent_python=image.agent_python,
        layers=image.layers,
        env_vars=image.env_vars,
    )
    gateway.reserve_at_start(record)
    boot = backend.start(engine.store.dir(record.id), spec, record.boot)
    record = record.moved_to(RUNNING, boot=boot, reason=None)
    try:
        record = gateway.bring_up(engine, record)
    except BaseException:
        # Never running without the network it was promised: back to stopped, and say why.
        engine.store.save(record.moved_to(STOPPED, boot=backend.stop(engine.store.dir(record.id), boot)))
        raise
    engine.store.save(record)
    return record


def _refusal(engine: Engine, record: WorkspaceRecord) -> RoostError:
    """Why a workspace in a state other than running, unhealthy or stopped, or one its backend
    never booted (a create that did not get that far), cannot be stopped or started."""
    if record.state == CREATING and engine.store.owner_alive(record.id):
        return ConflictError(
            f"workspace {record.id} is {record.state}", code="workspace_busy", hint="retry in a moment"
        )
    if record.state in (FAILED, CREATING) or record.boot is None:
        return recovery.failed_error(record.id, record.reason)
    return ConflictError(f"workspace {record.id} is {record.state}", code="workspace_busy", hint="retry in a moment")
