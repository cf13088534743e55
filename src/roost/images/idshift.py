"""Root filesystems owned by a user namespace's host ids, derived from cached ones.

When roost runs as root, a sandbox's ids 0..65535 are an unprivileged host
range starting at some offset. A rootfs cached as root (files owned by 0,
42, ...) would look unowned from inside, and the workspace's root could not
even copy up `/etc/passwd`. So each (rootfs, offset) pair gets one derived
copy whose owners are shifted by the offset, made once, by copy then chown,
in a staging dir and renamed into place; later workspaces share it read-only
as the lower layer of their overlays.

Imports: errors and the standard library.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from roost.errors import ImageError

ID_LIMIT = 65536  # ids a workspace's namespace maps; owners beyond it are refused


def shifted_name(key: str, uid_offset: int, gid_offset: int) -> str:
    return f"{key}@u{uid_offset}g{gid_offset}"


def _shift_entry(path: str, st: os.stat_result, uid_offset: int, gid_offset: int) -> None:
    if st.st_uid >= ID_LIMIT or st.st_gid >= ID_LIMIT:
        raise ImageError(
            f"{path} is owned by {st.st_uid}:{st.st_gid}, beyond the {ID_LIMIT} ids a workspace maps",
            code="image_invalid",
            hint="rebuild or re-pull the environment",
        )
    os.lchown(path, st.st_uid + uid_offset, st.st_gid + gid_offset)
    if not stat.S_ISLNK(st.st_mode):
        # chown clears setuid/setgid; the copy keeps the image's modes exactly.
        os.chmod(path, stat.S_IMODE(st.st_mode))


def shift_tree(root: Path, uid_offset: int, gid_offset: int) -> None:
    """Add the offsets to the owner of every entry under `root` (and root itself), in place.

    Raises:
        ImageError: image_invalid when an owner is beyond the mapped range.
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


def make_shifted(source: Path, staging: Path, uid_offset: int, gid_offset: int) -> Path:
    """Copy `source` into `staging`/rootfs with owners shifted; return the copy.

    Raises:
        ImageError: copy_failed, disk_full, image_invalid.
    """
    target = staging / "rootfs"
    cp = shutil.which("cp")
    if cp is None:
        raise ImageError("cp (coreutils) is not installed", code="copy_failed")
    done = subprocess.run(
        [cp, "-a", "--reflink=auto", "--", str(source), str(target)], capture_output=True, check=False
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        code = "disk_full" if "No space left" in detail else "copy_failed"
        raise ImageError(f"cannot copy the environment's rootfs: {detail}", code=code)
    shift_tree(target, uid_offset, gid_offset)
    return target
