"""Reading a process's state from /proc/<pid>/stat inside the guest.

The command name in that file may hold spaces and parentheses, so fields
are counted from after the last ')'. Standard library only.
"""

from __future__ import annotations

import os

GONE_STATES = (b"Z", b"X")  # zombie or dead: not running, whatever the pid table says


def stat_fields(pid: int) -> list[bytes] | None:
    """Fields after the command name (state first, then ppid, pgrp, session, ...), or None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()


def is_running(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and bool(fields) and fields[0] not in GONE_STATES


def session_of(pid: int) -> int | None:
    """The session id of a running process, or None."""
    fields = stat_fields(pid)
    if not fields or len(fields) < 4 or fields[0] in GONE_STATES:
        return None
    return int(fields[3])


def session_members(sid: int) -> list[int]:
    """Running pids whose session id is `sid`."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and session_of(int(entry)) == sid]
