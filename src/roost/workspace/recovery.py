"""The one way out of each broken workspace state, and of the agent's errors
that have one, as a `Remedy` every face can phrase.

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


def stop(ws_id: str) -> Remedy:
    return Remedy(
        "stop it first (disk tools read a stopped workspace's disk; start it again after)", "workspace_stop", ws_id
    )


def start(ws_id: str) -> Remedy:
    return Remedy("start it", "workspace_start", ws_id)


def delete_failed(ws_id: str) -> Remedy:
    return Remedy("delete it, then create it again", "workspace_delete", ws_id)


# Agent errors whose way out is another operation on the same workspace: (summary, operation).
_BY_CODE = {
    "path_not_found": ("see what is in /workspace", "file_list"),
    "shell_not_found": ("see which shells there are", "shell_list"),
    "shell_not_running": ("open a new shell (this one's output can still be read)", "shell_open"),
    "service_not_found": ("see which services there are", "service_list"),
    "snapshot_not_found": ("see which snapshots there are", "snapshot_list"),
}


def for_error(code: str, ws_id: str) -> Remedy | None:
    """The operation that gets past an agent's error with `code` in workspace `ws_id`; None when there is none."""
    way_out = _BY_CODE.get(code)
    return None if way_out is None else Remedy(way_out[0], way_out[1], ws_id)


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
