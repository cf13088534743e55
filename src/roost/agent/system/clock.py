"""The agent's wall clock, as its records write it.

Durations and deadlines use `time.monotonic` where they are measured;
this is only for the `*_at` fields of records the host reads back.

Imports: the standard library only.
"""

from __future__ import annotations

import time


def now_iso() -> str:
    """Now, in UTC, to the second: `2026-01-31T12:00:00Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
