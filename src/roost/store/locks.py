"""Advisory file locks: with a deadline, for every read-modify-write of a record;
held for a process's lifetime, to tell whether the process that owns a workspace still runs.

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


class HeldLock:
    """An exclusive flock held until `release()` or until its process dies, however it dies.

    The kernel drops the lock with the last descriptor, so a `kill -9` of the
    holder frees it at once: other processes test it with `lock_is_held`.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_lock(path: Path) -> HeldLock | None:
    """Take an exclusive flock on `path` (created 0600) without waiting; None when another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    return HeldLock(fd)


def lock_is_held(path: Path) -> bool:
    """True while some live process holds `path`'s flock (a missing file is not held)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # also drops the probe's own lock
    return False
