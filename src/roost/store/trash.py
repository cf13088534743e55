"""Tombstones: a deleted workspace's directory leaves sight in one rename; its space is freed afterwards.

Removing a workspace with tens of thousands of files takes as long as the
filesystem takes to unlink them. `delete` need not wait for that: once
every process is gone, the directory is renamed to
`$ROOST_HOME/.trash/<time>-<random>` (atomic: any reader sees the workspace
whole or not at all, and the name no listing matches carries no workspace
id), and a detached `rm -rf` frees the space while the command returns.
If that remover is killed, or the machine goes down first, the tombstone
stays; the first store opened once it is `STALE_SECONDS` old removes it.
On a nearly full disk the space is what the user wants back, so it is
freed before `delete` returns.

Imports: errors and the standard library only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from roost.errors import Remedy, StorageError

TRASH_DIR = ".trash"
# A tombstone this old has lost its remover (killed, or the host went down): the next store to open removes it.
STALE_SECONDS = 60
# Below this much free space, deletes free it before returning.
LOW_SPACE_BYTES = 1 << 30
LOW_SPACE_FRACTION = 0.05
# Each pass of a removal may open up one more level of directories a workspace locked itself out of.
REMOVE_PASSES = 8


class Trash:
    """The tombstones of one roost home (beside `workspaces/`, on the same filesystem)."""

    def __init__(self, home: Path) -> None:
        self.directory = home / TRASH_DIR

    def bury(self, directory: Path) -> Path:
        """Move `directory` out of sight in one rename; the tombstone's path.

        Raises:
            OSError: it cannot be renamed (the caller removes it in place).
        """
        self.directory.mkdir(mode=0o700, exist_ok=True)
        tomb = self.directory / f"{time.time_ns()}-{secrets.token_hex(4)}"
        os.rename(directory, tomb)
        return tomb

    def release(self, tomb: Path, what: str) -> None:
        """Free a tombstone's space: now on a nearly full disk, else in a detached process.

        Raises:
            StorageError: delete_incomplete when it is removed now and something stays.
        """
        if not _low_on_space(self.directory):
            try:
                subprocess.Popen(
                    ["rm", "-rf", "--", str(tomb)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                    start_new_session=True,  # outlives this process, and a Ctrl-C of it
                )
                return
            except OSError:
                pass  # no `rm` here: remove it ourselves
        remove_tree(tomb, what)

    def reap(self, *, now_ns: int | None = None) -> None:
        """Remove every tombstone older than `STALE_SECONDS` (best effort: a failure waits for the next try)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        stale_before = (time.time_ns() if now_ns is None else now_ns) - STALE_SECONDS * 1_000_000_000
        for name in names:
            born = name.partition("-")[0]
            if born.isdigit() and int(born) < stale_before:
                try:
                    remove_tree(self.directory / name, "a deleted workspace")
                except StorageError:
                    continue

    def tombstones(self) -> list[str]:
        try:
            return sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []


def _low_on_space(path: Path) -> bool:
    try:
        stats = os.statvfs(path)
    except OSError:
        return True
    free = stats.f_bavail * stats.f_frsize
    return free < LOW_SPACE_BYTES or free < stats.f_blocks * stats.f_frsize * LOW_SPACE_FRACTION


def remove_tree(path: Path, what: str, remedy: Remedy | None = None) -> None:
    """Remove `path` and everything in it; needs no free space.

    A directory of ours that the workspace made unwritable or unreadable
    (chmod 0) gets its owner's rwx back and is tried again, a bounded
    number of times.

    Raises:
        StorageError: delete_incomplete when something could not be removed.
    """
    failures: list[str] = []
    opened: list[bool] = []

    def failed(function: Any, name: str, info: tuple[type[BaseException], BaseException, Any]) -> None:
        exc = info[1]
        if isinstance(exc, FileNotFoundError):
            return  # gone already is what we want
        if isinstance(exc, PermissionError):
            opened.append(_open_up(Path(name)) | _open_up(Path(name).parent))
        failures.append(f"{Path(name).name}: {exc.strerror if isinstance(exc, OSError) else exc}")

    for _ in range(REMOVE_PASSES):
        failures.clear()
        opened.clear()
        shutil.rmtree(path, onerror=failed)
        if not failures or not path.exists() or not any(opened):
            break
    if failures and path.exists():
        raise StorageError(
            f"{what} was stopped but {len(failures)} of its files could not be removed (first: {failures[0]})",
            code="delete_incomplete",
            remedy=remedy,
            hint=None if remedy else f"remove what is left of it under {path.parent}",
        )


def _open_up(directory: Path) -> bool:
    """Give a directory of ours its owner's rwx back; whether anything changed."""
    try:
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        mode = stat.S_IMODE(st.st_mode)
        if mode & stat.S_IRWXU == stat.S_IRWXU:
            return False
        os.chmod(directory, mode | stat.S_IRWXU)
        return True
    except OSError:
        return False
