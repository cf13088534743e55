"""What comes back when a stopped workspace starts again, and what does not.

A workspace's processes end when it stops. Its services started with
`--restart always|on-failure` are kept in its record (`workspace.services`)
and started again by `revive` once its agent is up, all at once, each
waiting for its readiness probe; one that fails to come back is reported,
never fatal to the start. Shells never come back: `stop` notes which were
open, and the start reports them closed (unknown when the agent was already
gone: a new agent marks those `lost`).

What the last start brought back is kept in the record (`last_start`), so
`status` shows what `start` said.

Imports: models, store (records, states), workspace siblings (engine, services, shells), errors and the standard library.
"""

from __future__ import annotations

from roost.errors import RoostError
from roost.models import ServiceFailure, StartReport
from roost.store.records import WorkspaceRecord, utc_now
from roost.store.states import RUNNING
from roost.workspace import services, shells
from roost.workspace.engine import Engine

# Services started again at once; more wait for a free slot.
MAX_PARALLEL_STARTS = 8


def open_shells(engine: Engine, record: WorkspaceRecord) -> list[str] | None:
    """The ids of the shells running in a running workspace; None when its agent cannot say."""
    if record.state != RUNNING:
        return None
    try:
        return [shell.id for shell in shells.list_shells(engine, record) if shell.state == "running"]
    except RoostError:
        return None


def revive(engine: Engine, record: WorkspaceRecord) -> WorkspaceRecord:
    """Start the record's kept services again and keep what came back as its `last_start`.

    `record` is running, with its agent up; the caller does not hold its lock.
    """
    from concurrent.futures import ThreadPoolExecutor  # only here: every command imports this module

    names = sorted(record.kept_services)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_STARTS, len(names)))) as pool:
        outcomes = dict(zip(names, pool.map(lambda name: _start_again(engine, record, name), names), strict=True))
    report = StartReport(
        at=utc_now(),
        services=tuple(name for name, why in outcomes.items() if why is None),
        services_failed=tuple(ServiceFailure(name, why) for name, why in outcomes.items() if why is not None),
        shells_closed=None if record.shells_at_stop is None else tuple(record.shells_at_stop),
    )
    return engine.store.update(record.id, lambda r: r.replace(last_start=report.to_dict(), shells_at_stop=None))


def _start_again(engine: Engine, record: WorkspaceRecord, name: str) -> str | None:
    """None when service `name` is up again; why not otherwise."""
    try:
        info = services.start_kept(engine, record, name)
    except RoostError as exc:
        return f"{exc.message} [{exc.code}]"
    if info.state not in services.ACTIVE_STATES:
        return info.reason or f"it is {info.state}"
    return None


def last_start(record: WorkspaceRecord) -> StartReport | None:
    """The record's `last_start` as the models show it (None: never started again, or unreadable)."""
    kept = record.last_start
    if kept is None:
        return None
    try:
        failed = tuple(ServiceFailure(str(f["name"]), str(f["reason"])) for f in kept.get("services_failed", []))
        closed = kept.get("shells_closed")
        return StartReport(
            at=str(kept["at"]),
            services=tuple(str(name) for name in kept.get("services", [])),
            services_failed=failed,
            shells_closed=None if closed is None else tuple(str(shell) for shell in closed),
        )
    except (KeyError, TypeError, AttributeError):
        return None
