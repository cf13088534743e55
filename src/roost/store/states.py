"""A workspace's states and the moves between them, as its record keeps them.

A pure module, so the state machine can be read and tested on its own:

    creating --booted, seeded, baselined--> running
        \\--its creator ended first--> failed
    running --its agent, sandbox or VM gone--> unhealthy
    running | unhealthy --stop--> stopped --start--> running
    any --delete--> deleting --> (removed; a delete that fails midway stays deleting)

One more move exists: something other than the workspace's agent answering
while its create seeds it marks it unhealthy (creating -> unhealthy) before
the create removes it. Staying in a state is always allowed.

Imports: nothing.
"""

from __future__ import annotations

CREATING = "creating"
RUNNING = "running"
STOPPED = "stopped"
UNHEALTHY = "unhealthy"
FAILED = "failed"
DELETING = "deleting"
STATES = (CREATING, RUNNING, STOPPED, UNHEALTHY, FAILED, DELETING)

_NEXT = {
    CREATING: frozenset({RUNNING, FAILED, UNHEALTHY, DELETING}),
    RUNNING: frozenset({UNHEALTHY, STOPPED, DELETING}),
    UNHEALTHY: frozenset({STOPPED, DELETING}),
    STOPPED: frozenset({RUNNING, DELETING}),
    FAILED: frozenset({DELETING}),
    DELETING: frozenset(),
}


def can_move(current: str, new: str) -> bool:
    """True when a workspace in state `current` may be recorded as `new`."""
    return new == current or new in _NEXT.get(current, frozenset())
