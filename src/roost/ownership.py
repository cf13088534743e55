"""Moving a directory tree's owners into a user namespace's range of host ids.

When roost runs as root, a sandbox's ids 0..65535 are host ids starting at
an offset. A tree made with ordinary ids (a cached rootfs; a workspace
created before sandboxes had their own user namespace) is shifted by adding
the offset to every owner, in place, keeping modes (chown clears
setuid/setgid, so they are set again) and visiting each hard-linked inode
once. Symlinks are never followed.

This module imports only the standard library.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

ID_LIMIT = 65536  # ids a workspace's namespace maps


class OwnerOutOfRange(ValueError):
    """An entry is owned by an id the namespace does not map."""

    def __init__(self, path: str, uid: int, gid: int) -> None:
        super().__init__(f"{path} is owned by {uid}:{gid}, beyond the {ID_LIMIT} ids a workspace maps")


def _shift_entry(path: str, st: os.stat_result, uid_offset: int, gid_offset: int) -> None:
    if st.st_uid >= ID_LIMIT or st.st_gid >= ID_LIMIT:
        raise OwnerOutOfRange(path, st.st_uid, st.st_gid)
    os.lchown(path, st.st_uid + uid_offset, st.st_gid + gid_offset)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))


def shift_tree(root: Path, uid_offset: int, gid_offset: int) -> None:
    """Add the offsets to the owner of every entry under `root` (and root itself).

    Raises:
        OwnerOutOfRange: an owner is beyond the mapped range (entries before it are shifted).
        OSError: the tree cannot be read or changed.
    """
    _shift_entry(str(root), os.lstat(root), uid_offset, gid_offset)
    shifted: set[tuple[int, int]] = set()  # hard links share one inode: shift it once
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in shifted:
                    continue
                shifted.add((st.st_dev, st.st_ino))
            _shift_entry(path, st, uid_offset, gid_offset)
