"""Moving a directory tree's owners into a user namespace's range of host ids.

When roost runs as root, a sandbox's ids 0..65535 are host ids starting at
an offset. A tree made with ordinary ids (a cached rootfs; a workspace
created before sandboxes had their own user namespace) is shifted by adding
the offset to every owner, in place, keeping modes (chown clears
setuid/setgid, so they are set again) and visiting each hard-linked inode
once.

The walk never follows a symlink and never re-resolves a path: directories
are opened relative to their parent's descriptor (`os.fwalk`), and each entry
is changed through a descriptor opened with O_NOFOLLOW, so a tree whose
contents change underneath (a workspace's, say) cannot steer a chown or
chmod onto anything outside it.

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


def _shift_entry(
    dir_fd: int, name: str, shown: str, uid_offset: int, gid_offset: int, seen: set[tuple[int, int]]
) -> None:
    st = os.lstat(name, dir_fd=dir_fd)
    if stat.S_ISLNK(st.st_mode):
        _check(shown, st, uid_offset, gid_offset)
        os.chown(name, st.st_uid + uid_offset, st.st_gid + gid_offset, dir_fd=dir_fd, follow_symlinks=False)
        return
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)  # what the descriptor holds, whatever the name meant a moment ago
        if stat.S_ISLNK(st.st_mode):
            return  # swapped for a link since the lstat: not ours to follow
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                return
            seen.add((st.st_dev, st.st_ino))
        _check(shown, st, uid_offset, gid_offset)
        # An O_PATH descriptor cannot fchown/fchmod; its /proc/self/fd link names exactly that inode.
        via = f"/proc/self/fd/{fd}"
        os.chown(via, st.st_uid + uid_offset, st.st_gid + gid_offset)
        os.chmod(via, stat.S_IMODE(st.st_mode))
    finally:
        os.close(fd)


def _check(shown: str, st: os.stat_result, uid_offset: int, gid_offset: int) -> None:
    """The entry's owner must be one of the namespace's ids: 0.. before a shift, offset.. before
    an unshift (negative offsets)."""
    uid = st.st_uid + min(uid_offset, 0)
    gid = st.st_gid + min(gid_offset, 0)
    if not (0 <= uid < ID_LIMIT and 0 <= gid < ID_LIMIT):
        raise OwnerOutOfRange(shown, st.st_uid, st.st_gid)


def shift_tree(root: Path, uid_offset: int, gid_offset: int) -> None:
    """Add the offsets to the owner of every entry under `root` (and root itself); negative
    offsets take a tree owned by a namespace's host ids back to ids 0...

    Raises:
        OwnerOutOfRange: an owner is beyond the mapped range (entries before it are shifted).
        OSError: the tree cannot be read or changed.
    """
    seen: set[tuple[int, int]] = set()
    parent = os.open(root.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _shift_entry(parent, root.name, str(root), uid_offset, gid_offset, seen)
    finally:
        os.close(parent)
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirnames + filenames:
            _shift_entry(dir_fd, name, os.path.join(dirpath, name), uid_offset, gid_offset, seen)
