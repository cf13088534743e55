"""Where host writes of roost's own state meet a full disk: one error, `disk_full`.

Every write under `$ROOST_HOME` that can run out of space (records, exec
history, new workspace directories) goes through `state_write`, so a full
disk is reported the same way wherever it is hit, never as a bare OSError.

Imports: errors and the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from roost.errors import StorageError, is_disk_full

HINT = "free space on the disk that holds roost's state (deleting a workspace frees its space, also on a full disk)"


@contextmanager
def state_write(what: str) -> Iterator[None]:
    """Run a write of `what` (e.g. "the workspace record"), translating a full disk.

    Raises:
        StorageError: disk_full when the disk or the user's quota is full.
    """
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise StorageError(
            f"cannot save {what}: the disk holding roost's state is full", code="disk_full", hint=HINT
        ) from None
