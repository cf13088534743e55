"""Confine host paths a model names (`seed_path`, `source`, `output_path`) to the roots the operator named.

Roots are checked once, when the server starts: each must be an existing
directory, and none may be `/`, the user's home, roost's state directory
(`ROOST_HOME`) or its image cache, an ancestor of any of those, or a
directory inside roost's state or cache. With no roots the server still
runs, and every tool given a host path refuses it, saying how to add one.

A path a tool receives is matched to a root lexically (relative paths are
taken from the server's working directory; `..` is folded in before the
match) and handed to the SDK as a `ConfinedPath`. The SDK opens it from
the root one component at a time without following any symlink, and
refuses roost's state by device and inode, so the check and the use are
one walk over one file.

This module imports `roost.confinement`, `roost.errors` and the standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from roost.confinement import ConfinedPath
from roost.errors import InvalidArgument

__all__ = ["PATH_NOT_ALLOWED", "ROOT_NOT_ALLOWED", "AllowedRoots"]

PATH_NOT_ALLOWED = "path_not_allowed"
ROOT_NOT_ALLOWED = "root_not_allowed"
ROOT_HINT = "name a project directory, e.g. --allow-root ~/src/myproject"


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class AllowedRoots:
    """The host directories tools may read from and export into.

    Args:
        roots: the operator's `--allow-root` directories (may be empty).
        roost_home, image_cache: roost's own state; no root may be, contain or lie inside them.
        user_home: the user's home; no root may be or contain it (a root inside it is fine).

    Raises:
        InvalidArgument: root_not_allowed for a root that is not an existing
            directory or touches a protected directory.
    """

    def __init__(self, roots: Iterable[str], *, roost_home: str, image_cache: str, user_home: str) -> None:
        state = {
            "roost's state directory (ROOST_HOME)": os.path.realpath(roost_home),
            "roost's image cache": os.path.realpath(image_cache),
        }
        home = os.path.realpath(user_home)
        spellings: list[tuple[str, str]] = []
        for root in roots:
            given = os.path.normpath(os.path.abspath(os.path.expanduser(root)))
            real = os.path.realpath(given)
            if not os.path.isdir(real):
                raise InvalidArgument(
                    f"allowed root {root!r} is not a directory", code=ROOT_NOT_ALLOWED, hint=ROOT_HINT
                )
            if real == "/":
                self._refuse(root, "is the file system root")
            if _within(home, real):
                self._refuse(root, "is or contains your home directory")
            for what, path in state.items():
                if _within(path, real):
                    self._refuse(root, f"is or contains {what}")
                if _within(real, path):
                    self._refuse(root, f"is inside {what}")
            # The root as given and as resolved both admit paths; either way the walk starts at `real`.
            spellings += [(given, real), (real, real)]
        # Longest first, so a root nested in another root claims its own paths.
        self._spellings = sorted(set(spellings), key=lambda pair: len(pair[0]), reverse=True)
        self.roots: tuple[str, ...] = tuple(dict.fromkeys(real for _given, real in spellings))

    @staticmethod
    def _refuse(root: str, why: str) -> None:
        raise InvalidArgument(
            f"--allow-root {root!r} is never allowed: it {why}", code=ROOT_NOT_ALLOWED, hint=ROOT_HINT
        )

    def confine(self, path: str, *, param: str, output: bool = False) -> ConfinedPath:
        """`path` as a `ConfinedPath` below the allowed root it names.

        With `output` (a path the tool writes), no component may be `.git`: a
        model (perhaps steered by what a workspace holds) must not plant hooks
        or config that git would run as the operator.

        Raises:
            InvalidArgument: invalid_argument for an empty path; path_not_allowed
                when the server allows no roots, the path is under none of them, or
                an output would land inside a `.git` directory.
        """
        if not path or "\x00" in path:
            raise InvalidArgument(f"{param} must be a non-empty host path")
        if not self.roots:
            raise InvalidArgument(
                f"{param} {path!r} is refused: this server allows no host paths",
                code=PATH_NOT_ALLOWED,
                hint="the operator can restart the server with --allow-root DIR to allow paths under DIR",
            )
        absolute = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
        for spelling, real in self._spellings:
            if _within(absolute, spelling):
                parts = tuple(p for p in absolute[len(spelling) :].split("/") if p)
                if output and ".git" in parts:
                    raise InvalidArgument(
                        f"{param} {path!r} is inside a .git directory, which tools never write to",
                        code=PATH_NOT_ALLOWED,
                        hint="export somewhere outside .git",
                    )
                return ConfinedPath(real, parts, path)
        # The roots are host paths; the message names only what the caller sent.
        raise InvalidArgument(
            f"{param} {path!r} is outside the directories this server may use",
            code=PATH_NOT_ALLOWED,
            hint="use a path under the server's allowed roots, or restart it with --allow-root DIR",
        )
