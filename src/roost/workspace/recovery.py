"""The one way out of each broken workspace state, as a `Remedy` every face can phrase.

An unhealthy workspace (its agent, sandbox or VM is gone) is restarted:
stop kills whatever it left, start boots it again over the /workspace it
kept. A failed one (its create was interrupted) never got its baseline, so
the only way out is to delete it and create it again.

Imports: errors and store.states only.
"""

from __future__ import annotations

from roost.errors import Remedy, WorkspaceError
from roost.store.states import FAILED, UNHEALTHY


def restart(ws_id: str) -> Remedy:
    return Remedy(
        "restart it (stops what is left of it, then starts it; /workspace is kept)", "workspace_restart", ws_id
    )


def start(ws_id: str) -> Remedy:
    return Remedy("start it", "workspace_start", ws_id)


def delete_failed(ws_id: str) -> Remedy:
    return Remedy("delete it, then create it again", "workspace_delete", ws_id)


def for_state(ws_id: str, state: str) -> Remedy | None:
    """What a workspace in `state` needs, for `status` and `list`; None when it needs nothing."""
    if state == UNHEALTHY:
        return restart(ws_id)
    if state == FAILED:
        return delete_failed(ws_id)
    return None


def failed_error(ws_id: str, reason: str | None) -> WorkspaceError:
    """The error every operation on a failed workspace raises."""
    return WorkspaceError(
        f"workspace {ws_id} failed: {reason or 'its create never finished'}",
        code="workspace_failed",
        remedy=delete_failed(ws_id),
    )
