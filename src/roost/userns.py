"""What this host gives a normal user for user namespaces with many ids, and how to fix what is missing.

As a normal user, two things need a user namespace whose ids 1..65535 are
the user's subordinate ids: the sandbox backend (idmap.py) and image builds
(mmdebstrap's unshare mode). That takes three things from the host, each
checked here with the fix for when it is missing:

- user namespaces: `user.max_user_namespaces` above 0, and where the kernel
  has them, `kernel.unprivileged_userns_clone` on and AppArmor's
  `kernel.apparmor_restrict_unprivileged_userns` off;
- the setuid helpers `newuidmap`/`newgidmap` (Debian's `uidmap`);
- a range of at least 65535 subordinate ids for the user in both
  `/etc/subuid` and `/etc/subgid`.

`roost doctor` lists these checks; the image builder refuses early, naming
them, rather than failing half-way through mmdebstrap.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
# A workspace maps ids 0..65535; root inside is the user, the rest are subordinate ids.
SUBORDINATE_IDS = 65535
# Where `useradd` starts handing out ranges (login.defs SUB_UID_MIN), and their usual size.
_FIRST_SUBORDINATE = 100_000
_BLOCK = 65536
PROC_SYS = Path("/proc/sys")


@dataclass(frozen=True)
class Requirement:
    """One thing a normal user's namespaces need: met or not, what was found, how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


def user_names(uid: int) -> tuple[str, ...]:
    """How /etc/subuid may name `uid`: its login name and the number itself."""
    try:
        return (pwd.getpwuid(uid).pw_name, str(uid))
    except KeyError:
        return (str(uid),)


def _ranges(path: Path) -> list[tuple[str, int, int]]:
    """(owner, start, count) of every well-formed line of a subordinate id file."""
    try:
        text = path.read_text()
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3:
            continue
        try:
            found.append((fields[0], int(fields[1]), int(fields[2])))
        except ValueError:
            continue
    return found


def subordinate_range(path: Path, names: tuple[str, ...], minimum: int) -> tuple[int, int] | None:
    """The first range of at least `minimum` ids that `path` gives any of `names` (a name or a uid)."""
    for owner, start, count in _ranges(path):
        if owner in names and count >= minimum:
            return start, count
    return None


def free_block(*paths: Path) -> tuple[int, int]:
    """The first block of 65536 ids from 100000 up that no line of `paths` uses: (first, last)."""
    used = sorted((start, start + count) for path in paths for _, start, count in _ranges(path))
    first = _FIRST_SUBORDINATE
    for start, end in used:
        if start < first + _BLOCK and end > first:
            first = max(first, end)
    return first, first + _BLOCK - 1


def _read_knob(name: str) -> int | None:
    try:
        return int((PROC_SYS / name).read_text().strip())
    except (OSError, ValueError):
        return None


def user_namespaces() -> Requirement:
    """Whether the kernel lets a normal user create user namespaces."""
    max_namespaces = _read_knob("user/max_user_namespaces")
    if max_namespaces == 0:
        return Requirement(
            "userns",
            False,
            "user.max_user_namespaces is 0",
            "sysctl -w user.max_user_namespaces=15000 (as root; persist it in /etc/sysctl.d/)",
        )
    if _read_knob("kernel/unprivileged_userns_clone") == 0:
        return Requirement(
            "userns",
            False,
            "kernel.unprivileged_userns_clone is 0",
            "sysctl -w kernel.unprivileged_userns_clone=1 (as root; persist it in /etc/sysctl.d/)",
        )
    if _read_knob("kernel/apparmor_restrict_unprivileged_userns") == 1:
        return Requirement(
            "userns",
            False,
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for bwrap and mmdebstrap",
        )
    limit = "no limit set" if max_namespaces is None else f"up to {max_namespaces}"
    return Requirement("userns", True, f"enabled for normal users ({limit})")


def _privileged(path: str) -> bool:
    """Setuid root, or (as some distributions ship them) carrying file capabilities."""
    st = os.stat(path)
    if st.st_uid == 0 and st.st_mode & stat.S_ISUID:
        return True
    try:
        return bool(os.getxattr(path, "security.capability"))
    except OSError:
        return False


def id_map_helpers() -> Requirement:
    """Whether newuidmap and newgidmap are installed and privileged."""
    found = {name: shutil.which(name) for name in ("newuidmap", "newgidmap")}
    absent = [name for name, path in found.items() if path is None]
    if absent:
        return Requirement(
            "newuidmap", False, f"{' and '.join(absent)} not installed", "apt-get install uidmap (as root)"
        )
    weak = [path for path in found.values() if path is not None and not _privileged(path)]
    if weak:
        return Requirement(
            "newuidmap",
            False,
            f"{' and '.join(weak)} neither setuid root nor given capabilities",
            "reinstall them: apt-get install --reinstall uidmap (as root)",
        )
    return Requirement("newuidmap", True, ", ".join(p for p in found.values() if p))


def subordinate_ids(uid: int) -> Requirement:
    """Whether `uid` has a range of at least 65535 ids in both /etc/subuid and /etc/subgid."""
    names = user_names(uid)
    ranges = {path: subordinate_range(path, names, SUBORDINATE_IDS) for path in (SUBUID, SUBGID)}
    if all(ranges.values()):
        described = "; ".join(f"{path}: {r[0]}-{r[0] + r[1] - 1}" for path, r in ranges.items() if r)
        return Requirement("subids", True, described)
    lacking = " and ".join(str(path) for path, r in ranges.items() if r is None)
    first, last = free_block(SUBUID, SUBGID)
    flags = []
    if ranges[SUBUID] is None:
        flags.append(f"--add-subuids {first}-{last}")
    if ranges[SUBGID] is None:
        flags.append(f"--add-subgids {first}-{last}")
    return Requirement(
        "subids",
        False,
        f"{names[0]} has no range of {SUBORDINATE_IDS} ids in {lacking}",
        f"usermod {' '.join(flags)} {names[0]} (as root)",
    )


def requirements(uid: int | None = None) -> tuple[Requirement, ...]:
    """Every check above, for `uid` (default: the effective uid)."""
    who = os.geteuid() if uid is None else uid
    return (user_namespaces(), id_map_helpers(), subordinate_ids(who))
