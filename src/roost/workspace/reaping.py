"""TTL reaping: a workspace whose time to live has passed is deleted by the next roost command.

Every command asks `reap_due`, which costs one small file read (`store.expiry`: when the next TTL
falls due) until one is due; only then are the records read and the expired workspaces deleted.
`list` and `create` scan every time (`reap_expired`). A workspace whose owner is still alive (a
`run` longer than its TTL) is never reaped from under it: it is looked at again a minute later.

Imports: store (records, expiry), workspace siblings (engine, lifecycle), errors and the standard library.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from roost.errors import RoostError
from roost.store import expiry
from roost.store.records import WorkspaceRecord, parse_time
from roost.workspace import lifecycle
from roost.workspace.engine import Engine

# How soon an expired workspace that could not be reaped (its owner runs, its delete failed) is tried again.
RECHECK_SECONDS = 60.0


def reap_due(engine: Engine) -> list[str]:
    """`reap_expired` when a TTL has fallen due since the last scan, else nothing (one file read)."""
    if not expiry.due(engine.store.home, time.time()):
        return []
    return reap_expired(engine)


def reap_expired(engine: Engine) -> list[str]:
    """Delete every workspace whose TTL has passed and whose owner is gone; return their ids.

    A `run` keeps owning its workspace while it runs, so a run longer than
    its workspace's TTL is never reaped from under it.
    """
    now = datetime.now(UTC)
    reaped = []
    for record in engine.store.records():
        if not isinstance(record, WorkspaceRecord) or not record.expires_at:
            continue
        if parse_time(record.expires_at) > now or engine.store.owner_alive(record.id):
            continue
        try:
            reaped.append(lifecycle.delete(engine, record.id))
        except RoostError:
            continue
    _note_next(engine)
    return reaped


def _note_next(engine: Engine) -> None:
    """Write when the next scan is due, from the records as they are now (under the global lock, so no
    TTL set meanwhile is missed)."""
    try:
        with engine.store.global_lock():
            now = time.time()
            due_at = [
                parse_time(record.expires_at).timestamp()
                for record in engine.store.records()
                if isinstance(record, WorkspaceRecord) and record.expires_at
            ]
            # One still there once due was not reaped: look again later, not at every command.
            upcoming = [at if at > now else now + RECHECK_SECONDS for at in due_at]
            expiry.write(engine.store.home, min(upcoming, default=math.inf))
    except (RoostError, OSError):
        pass  # the file stays as it was: at worst early, which only costs another scan
