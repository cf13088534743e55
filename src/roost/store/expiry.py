"""When the next TTL falls due among a home's workspaces, in one small file, so that any command can
tell with one read whether reaping is due instead of reading every record.

The file (`<home>/.next-expiry`, beside the store's lock) holds a UTC time in seconds since the epoch, or `none` when no
workspace has a TTL. It may be early (a TTL cleared or a workspace deleted since), which costs one scan
that writes it again; it is never late: whatever sets a TTL lowers it. A missing or unreadable file
means "scan now". Writers hold the store's global lock (see `lower` and `WorkspaceStore.global_lock`).

Imports: store.atomic and the standard library only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from roost.store.atomic import write_atomic

FILE_NAME = ".next-expiry"
_NONE = "none"


def path_in(home: Path) -> Path:
    return home / FILE_NAME


def read(home: Path) -> float | None:
    """The next expiry (seconds since the epoch; `inf` when there is none), or None when unknown."""
    try:
        with open(path_in(home), "rb") as fh:
            text = fh.read(64).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == _NONE:
        return math.inf
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def due(home: Path, now: float) -> bool:
    """Whether a scan for expired workspaces is due at `now` (unknown counts as due)."""
    known = read(home)
    return known is None or known <= now


def write(home: Path, at: float) -> None:
    """Record `at` (`inf`: no TTL anywhere) as the next expiry; the caller holds the global lock.

    Not durable: a file lost in a power cut only makes the next command scan.
    """
    text = _NONE if math.isinf(at) else f"{at:.3f}"
    if os.path.isdir(home):
        write_atomic(path_in(home), text.encode() + b"\n", durable=False)


def lower(home: Path, at: float) -> None:
    """Make the next expiry no later than `at`; the caller holds the global lock. An unknown one
    stays unknown: the scan it calls for finds `at` too."""
    known = read(home)
    if known is None or known <= at:
        return
    write(home, at)
