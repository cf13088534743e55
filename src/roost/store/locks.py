"""Advisory file locks with a deadline, for every read-modify-write of a record.

Imports: errors and the standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from roost.errors import ConflictError

DEFAULT_LOCK_TIMEOUT = 15.0


@contextmanager
def file_lock(path: Path, *, timeout: float = DEFAULT_LOCK_TIMEOUT, what: str = "workspace") -> Iterator[None]:
    """Hold an exclusive flock on `path` (created 0600) for the block.

    Raises:
        ConflictError: workspace_busy when another process holds it past `timeout`.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise ConflictError(
                        f"the {what} is locked by another roost process",
                        code="workspace_busy",
                        hint="another command is changing it; retry in a moment",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing drops the lock
