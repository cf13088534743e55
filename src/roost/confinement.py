"""`ConfinedPath`: a host path that must be reached beneath a trusted directory without following a link.

A caller that relays host paths it did not choose (the MCP server, on behalf
of a model) passes a `ConfinedPath` wherever the SDK takes a host path
(`seed_path`, a `sync_push` source, an `export` output). roost then opens it
one component at a time from `root`, refusing any symlink on the way and any
directory that is roost's own state (its home or image cache), so what was
checked is exactly what is used. A plain `str` path is the caller's own: it
is resolved once, as given, and nothing inside it is followed.

This module imports `roost.errors` and the standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from roost.errors import InvalidArgument

__all__ = ["ConfinedPath", "HostArg"]


@dataclass(frozen=True)
class ConfinedPath:
    """`parts` below the real directory `root`; `shown` is the path as the requester named it (for messages).

    Raises:
        InvalidArgument: on construction, when `root` is not absolute or a part is empty, `.`, `..` or holds `/` or NUL.
    """

    root: str
    parts: tuple[str, ...]
    shown: str

    def __post_init__(self) -> None:
        if not os.path.isabs(self.root):
            raise InvalidArgument(f"a confinement root must be absolute, not {self.root!r}")
        for part in self.parts:
            if part in ("", ".", "..") or "/" in part or "\0" in part:
                raise InvalidArgument(f"{self.shown!r} has the unusable path component {part!r}")

    def __str__(self) -> str:
        return self.shown


# What the SDK takes wherever it names a host path.
HostArg = str | os.PathLike[str] | ConfinedPath
