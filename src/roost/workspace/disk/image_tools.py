"""Checking, repairing and growing a stopped microVM's ext4 disk with e2fsprogs.

`check` runs `e2fsck -n` (opens the image read-only: nothing is written).
`repair` and `grow` work on a copy made beside the image (copy-on-write
where the filesystem allows, holes kept) and move it over the image only
when every step succeeded, so a failure leaves the disk as it was.

Imports: errors, models, workspace.disk.debugfs (the tool lookup) and the standard library.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

from roost.errors import BackendError, InvalidArgument
from roost.models import DiskCheck, DiskGrow
from roost.workspace.disk.debugfs import tool, unreadable

__all__ = ["check", "grow", "parse_size", "repair"]

DEADLINE = 1800.0
MAX_DISK_BYTES = 16 * 1024**4
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
# e2fsck's exit status: 1 errors corrected, 2 corrected (reboot), 4 left uncorrected, 8 and up it failed.
FIXED = (1, 2)
SIZE_HINT = "give a size in bytes or with a unit, e.g. 4G or 512M, larger than the disk is now"


def parse_size(value: object) -> int:
    """A size in bytes from an int or text such as `4G`, `512MiB`, `1073741824` (units are binary).

    Raises:
        InvalidArgument: not a positive size up to 16 TiB.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (found := _SIZE.fullmatch(value.strip())):
        size = int(found.group(1)) * _UNITS[found.group(2).lower()]
    else:
        raise InvalidArgument(f"{value!r} is not a size", hint=SIZE_HINT)
    if not 0 < size <= MAX_DISK_BYTES:
        raise InvalidArgument(f"size {value!r} is out of range (at most 16 TiB)", hint=SIZE_HINT)
    return size


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=DEADLINE, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{Path(argv[0]).name} failed: {exc}", code="disk_tool_failed") from None


def _report(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr).strip()


def check(image: Path) -> DiskCheck:
    """`e2fsck -n -f`: every check, nothing written.

    Raises:
        BackendError: disk_tool_missing, disk_corrupt (not an ext4 image at all), disk_tool_failed.
    """
    done = _run([tool("e2fsck"), "-n", "-f", str(image)])
    if done.returncode >= 8:
        raise unreadable(image, _report(done).splitlines()[-1] if _report(done) else f"e2fsck exit {done.returncode}")
    return DiskCheck(clean=done.returncode == 0, repaired=False, exit_code=done.returncode, report=_report(done))


@contextlib.contextmanager
def _working_copy(image: Path) -> Iterator[Path]:
    """A copy of `image` beside it (removed unless the caller moved it over the image)."""
    copy = image.with_name(f".{image.name}.roost-{secrets.token_hex(4)}")
    done = _run(["cp", "--reflink=auto", "--sparse=always", "--", str(image), str(copy)])
    try:
        if done.returncode != 0:
            raise BackendError(f"cannot copy the disk: {_report(done)}", code="disk_copy_failed")
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def repair(image: Path) -> DiskCheck:
    """`e2fsck -p -f` on a copy, moved over the image only when the repair succeeded.

    Raises:
        BackendError: disk_tool_missing, disk_copy_failed, disk_tool_failed.
    """
    first = check(image)
    if first.clean:
        return first
    with _working_copy(image) as copy:
        done = _run([tool("e2fsck"), "-p", "-f", str(copy)])
        if done.returncode not in (0, *FIXED):
            return DiskCheck(clean=False, repaired=False, exit_code=done.returncode, report=_report(done))
        os.replace(copy, image)
    after = check(image)
    return DiskCheck(clean=after.clean, repaired=True, exit_code=done.returncode, report=_report(done))


def grow(image: Path, size: int) -> DiskGrow:
    """Enlarge the image file to `size` bytes and its filesystem to fill it (on a copy, swapped in at the end).

    Raises:
        InvalidArgument: invalid_argument when `size` is not larger than the image is now.
        BackendError: disk_corrupt (check it first), disk_tool_missing, disk_copy_failed, disk_grow_failed.
    """
    old = image.stat().st_size
    if size <= old:
        raise InvalidArgument(
            f"the disk is {old} bytes; {size} would not grow it (disks are never shrunk)", hint=SIZE_HINT
        )
    if not check(image).clean:
        raise BackendError(
            "the disk has filesystem errors; it is not grown",
            code="disk_corrupt",
            hint="repair it first (disk check with repair), then grow it",
        )
    with _working_copy(image) as copy:
        checked = _run([tool("e2fsck"), "-p", "-f", str(copy)])  # resize2fs wants a check newer than the last mount
        if checked.returncode not in (0, *FIXED):
            raise BackendError(f"e2fsck failed before growing: {_report(checked)}", code="disk_grow_failed")
        os.truncate(copy, size)  # sparse: the new space costs nothing until written
        done = _run([tool("resize2fs"), str(copy)])
        if done.returncode != 0:
            raise BackendError(f"resize2fs failed: {_report(done)}", code="disk_grow_failed")
        os.replace(copy, image)
    return DiskGrow(old_size_bytes=old, size_bytes=size)
