"""Which host ids a sandbox's users are: the user namespace's uid and gid maps.

A workspace always runs in a user namespace of its own, so its root has no
capability over the host, also when roost itself runs as root:

- roost as root: ids 0..65535 inside are an unprivileged range of host ids,
  root's subordinate range from /etc/subuid and /etc/subgid when it has one,
  else `DEFAULT_ROOT_START` (above where `useradd` hands out ranges). Files
  the workspace owns show on the host under that range.
- roost as a normal user: root inside is that user (as with rootless
  Podman), and ids 1..65535 are the user's subordinate range, written with
  `newuidmap`/`newgidmap` (Debian's `uidmap`). Without them only root is
  mapped: the workspace runs, but cannot chown files to other users.

Imports: errors, userns and the standard library.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

from roost.errors import BackendError
from roost.userns import SUBGID, SUBUID, id_map_helpers, subordinate_ids, subordinate_range, user_names

IDS = 65536  # 0..65535 inside: every id a Debian system uses
DEFAULT_ROOT_START = 1_000_000_000


@dataclass(frozen=True)
class IdRange:
    """`count` ids starting at `inside` in the namespace are `outside`.. on the host."""

    inside: int
    outside: int
    count: int

    def line(self) -> str:
        return f"{self.inside} {self.outside} {self.count}"


@dataclass(frozen=True)
class IdMap:
    """A workspace's uid and gid maps, and how they are written."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]
    # "direct": written to /proc/PID/{uid,gid}_map (root, or a single own id);
    # "newidmap": through the setuid newuidmap/newgidmap helpers.
    writer: str
    note: str

    @property
    def root_uid(self) -> int:
        """The host uid of the workspace's root."""
        return self.uids[0].outside

    @property
    def root_gid(self) -> int:
        return self.gids[0].outside

    @property
    def full(self) -> bool:
        """True when every id 0..65535 inside is mapped (chown to any user works)."""
        return sum(r.count for r in self.uids) >= IDS and sum(r.count for r in self.gids) >= IDS

    def host_uid(self, inside: int) -> int | None:
        return _lookup(self.uids, inside)

    def host_gid(self, inside: int) -> int | None:
        return _lookup(self.gids, inside)

    def launch_config(self) -> dict[str, Any]:
        """What the launcher needs to write this map (see launcher.py)."""
        config: dict[str, Any] = {
            "uids": [[r.inside, r.outside, r.count] for r in self.uids],
            "gids": [[r.inside, r.outside, r.count] for r in self.gids],
            "writer": self.writer,
        }
        if self.writer == "newidmap":
            # The launcher puts the target pid after the helper's name.
            config["newuidmap"] = [shutil.which("newuidmap") or "newuidmap", *_args(self.uids)]
            config["newgidmap"] = [shutil.which("newgidmap") or "newgidmap", *_args(self.gids)]
        return config

    def to_json(self) -> dict[str, Any]:
        return {
            "uids": [[r.inside, r.outside, r.count] for r in self.uids],
            "gids": [[r.inside, r.outside, r.count] for r in self.gids],
            "writer": self.writer,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, value: object) -> IdMap | None:
        """The map a workspace was created with; None for a record made before maps existed.

        Raises:
            BackendError: runtime_corrupt.
        """
        if value is None:
            return None
        try:
            if not isinstance(value, dict):
                raise TypeError
            return cls(
                tuple(IdRange(int(a), int(b), int(c)) for a, b, c in value["uids"]),
                tuple(IdRange(int(a), int(b), int(c)) for a, b, c in value["gids"]),
                str(value["writer"]),
                str(value.get("note", "")),
            )
        except (KeyError, TypeError, ValueError):
            raise BackendError(
                "the workspace's id map record is unreadable", code="runtime_corrupt", hint="recreate the workspace"
            ) from None


def _args(ranges: tuple[IdRange, ...]) -> list[str]:
    return [str(x) for r in ranges for x in (r.inside, r.outside, r.count)]


def _lookup(ranges: tuple[IdRange, ...], inside: int) -> int | None:
    for r in ranges:
        if r.inside <= inside < r.inside + r.count:
            return r.outside + inside - r.inside
    return None


def host_id_map() -> IdMap:
    """The map new workspaces of this host and user get."""
    uid, gid = os.geteuid(), os.getegid()
    names = user_names(uid)
    if uid == 0:
        sub_u = subordinate_range(SUBUID, names, IDS)
        sub_g = subordinate_range(SUBGID, names, IDS)
        if sub_u is not None and sub_g is not None:
            u_start, g_start = sub_u[0], sub_g[0]
            note = f"root's subordinate ids from {SUBUID} and {SUBGID}"
        else:
            u_start = g_start = DEFAULT_ROOT_START
            note = f"roost's default range (root has no {IDS}-id range in {SUBUID} and {SUBGID})"
        return IdMap((IdRange(0, u_start, IDS),), (IdRange(0, g_start, IDS),), "direct", note)
    sub_u = subordinate_range(SUBUID, names, IDS - 1)
    sub_g = subordinate_range(SUBGID, names, IDS - 1)
    helpers = id_map_helpers()
    if sub_u is not None and sub_g is not None and helpers.ok:
        return IdMap(
            (IdRange(0, uid, 1), IdRange(1, sub_u[0], IDS - 1)),
            (IdRange(0, gid, 1), IdRange(1, sub_g[0], IDS - 1)),
            "newidmap",
            "root is you; ids 1-65535 are your subordinate ids",
        )
    missing = [f"{r.detail} (fix: {r.fix})" for r in (helpers, subordinate_ids(uid)) if not r.ok]
    return IdMap(
        (IdRange(0, uid, 1),),
        (IdRange(0, gid, 1),),
        "direct",
        f"root is you and no other id is mapped: {'; '.join(missing)}",
    )
