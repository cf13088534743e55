"""Confine host paths a model names (`seed_path`, `source`) to the roots the operator allowed.

Paths are compared after `os.path.realpath`, so a symlink (or `..`) inside an
allowed root that points outside it is refused. The resolved path is what the
caller must use, so the check and the use see the same file.

This module imports only `roost.errors` and the standard library.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from roost.errors import InvalidArgument

PATH_NOT_ALLOWED = "path_not_allowed"


class AllowedRoots:
    """The host directories whose contents tools may read.

    Raises:
        InvalidArgument: on construction, when no root is given or a root is not a directory.
    """

    def __init__(self, roots: Iterable[str]) -> None:
        resolved: list[str] = []
        for root in roots:
            real = os.path.realpath(os.path.expanduser(root))
            if not os.path.isdir(real):
                raise InvalidArgument(
                    f"allowed root {root!r} is not a directory", hint="pass an existing directory to --allow-root"
                )
            resolved.append(real)
        if not resolved:
            raise InvalidArgument("at least one allowed root is needed", hint="pass --allow-root DIR")
        self.roots: tuple[str, ...] = tuple(resolved)

    def confine(self, path: str, *, param: str) -> str:
        """The real path of `path` (relative to the server's cwd), if it lies under an allowed root.

        Raises:
            InvalidArgument: invalid_argument for an empty path; path_not_allowed
                when the resolved path is outside every allowed root.
        """
        if not path or "\x00" in path:
            raise InvalidArgument(f"{param} must be a non-empty host path")
        real = os.path.realpath(os.path.expanduser(path))
        if any(_is_within(real, root) for root in self.roots):
            return real
        # The roots are host paths; the message names only what the caller sent.
        raise InvalidArgument(
            f"{param} {path!r} is outside the directories this server may read",
            code=PATH_NOT_ALLOWED,
            hint="use a path under the server's allowed roots, or restart it with --allow-root DIR",
        )


def _is_within(path: str, root: str) -> bool:
    return path == root or os.path.commonpath([path, root]) == root
