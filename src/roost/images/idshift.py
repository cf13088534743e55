"""Root filesystems owned by a user namespace's host ids, derived from cached ones.

When roost runs as root, a sandbox's ids 0..65535 are an unprivileged host
range starting at some offset. A rootfs cached as root (files owned by 0,
42, ...) would look unowned from inside, and the workspace's root could not
even copy up `/etc/passwd`. So each (rootfs, offset) pair gets one derived
copy whose owners are shifted by the offset, made once, by copy then chown,
in a staging dir and renamed into place; later workspaces share it read-only
as the lower layer of their overlays.

Imports: errors, ownership and the standard library.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from roost.errors import ImageError
from roost.ownership import OwnerOutOfRange, shift_tree


def shifted_name(key: str, uid_offset: int, gid_offset: int) -> str:
    return f"{key}@u{uid_offset}g{gid_offset}"


def copy_tree(source: Path, target: Path, what: str) -> None:
    """`cp -a` (reflinked where the filesystem can) of `source` to the new path `target`: owners,
    modes, links, xattrs and device nodes (overlay whiteouts) kept.

    Raises:
        ImageError: copy_failed, disk_full.
    """
    cp = shutil.which("cp")
    if cp is None:
        raise ImageError("cp (coreutils) is not installed", code="copy_failed")
    done = subprocess.run(
        [cp, "-a", "--reflink=auto", "--", str(source), str(target)], capture_output=True, check=False
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        code = "disk_full" if "No space left" in detail else "copy_failed"
        raise ImageError(f"cannot copy {what}: {detail}", code=code)


def make_shifted(source: Path, staging: Path, uid_offset: int, gid_offset: int) -> Path:
    """Copy `source` into `staging`/rootfs with owners shifted; return the copy.

    Raises:
        ImageError: copy_failed, disk_full, image_invalid.
    """
    target = staging / "rootfs"
    copy_tree(source, target, "the environment's rootfs")
    try:
        shift_tree(target, uid_offset, gid_offset)
    except OwnerOutOfRange as exc:
        raise ImageError(str(exc), code="image_invalid", hint="rebuild or re-pull the environment") from None
    return target
