"""Bytes allocated under a host directory a workspace may write to, read without following any link.

The walk goes from file descriptor to file descriptor (`os.fwalk`, no symlink followed), so a link the
workspace swaps in midway leads nowhere; each inode counts once, and a mount under the directory is
not descended into.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def allocated_bytes(directory: Path) -> int | None:
    """Bytes allocated under `directory`; None when it, or a directory under it, cannot be read."""
    try:
        top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    unreadable: list[OSError] = []
    try:
        device = os.fstat(top).st_dev
        seen: set[int] = set()
        total = 0
        for _where, dirs, files, dir_fd in os.fwalk(".", dir_fd=top, onerror=unreadable.append):
            for name in dirs + files:
                try:
                    info = os.lstat(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue  # removed meanwhile
                if info.st_ino not in seen and info.st_dev == device:
                    seen.add(info.st_ino)
                    total += info.st_blocks * 512
                if name in dirs and (info.st_dev != device or not stat.S_ISDIR(info.st_mode)):
                    dirs.remove(name)
    except OSError:
        return None
    finally:
        os.close(top)
    return None if unreadable else total
