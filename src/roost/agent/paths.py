"""Confinement of guest paths to the workspace root.

Callers name paths as the workspace sees them: ``/workspace/src/a.py`` or
``src/a.py``. `WorkspacePaths` maps them to where the agent can touch them
(the same path in a VM or sandbox, a host directory for the mock backend)
and refuses anything that would leave the root, including through symlinks.

Imports: protocol and the standard library only.
"""

from __future__ import annotations

import os
import posixpath

from roost.protocol import Code, OpError

GUEST_ROOT = "/workspace"


class WorkspacePaths:
    """Resolves guest paths under one workspace root directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def relative(self, path: str) -> str:
        """Normalise a guest path to a root-relative one ('' is the root itself).

        Raises:
            OpError: path_outside_workspace for anything not under /workspace.
        """
        if not isinstance(path, str) or not path or "\0" in path:
            raise OpError(Code.INVALID_ARGUMENT, "path must be a non-empty string without NUL bytes")
        joined = path if path.startswith("/") else posixpath.join(GUEST_ROOT, path)
        norm = posixpath.normpath(joined)
        if norm == GUEST_ROOT:
            return ""
        if not norm.startswith(GUEST_ROOT + "/"):
            raise OpError(
                Code.PATH_OUTSIDE_WORKSPACE,
                f"{path!r} is outside {GUEST_ROOT}",
                hint=f"give a path under {GUEST_ROOT} or one relative to it",
            )
        return norm[len(GUEST_ROOT) + 1 :]

    def host(self, path: str, *, follow_final: bool = True) -> str:
        """Return the real location of guest `path`, checked to stay under the root.

        With follow_final=False the last component may be a symlink that is
        returned as itself (for lstat, delete, writing a link).

        Raises:
            OpError: path_outside_workspace when the path or a symlink on it leaves the root.
        """
        rel = self.relative(path)
        candidate = os.path.join(self.root, rel) if rel else self.root
        if follow_final or not rel:
            resolved = checked = os.path.realpath(candidate)
        else:
            parent, name = os.path.split(candidate)
            checked = os.path.realpath(parent)
            resolved = os.path.join(checked, name)
        if not self.contains(checked):
            raise OpError(
                Code.PATH_OUTSIDE_WORKSPACE,
                f"{path!r} resolves outside {GUEST_ROOT} through a symlink",
                hint="symlinks are never followed out of the workspace",
            )
        return resolved

    def contains(self, real_path: str) -> bool:
        return real_path == self.root or real_path.startswith(self.root + os.sep)

    def guest(self, host_path: str) -> str:
        """The guest spelling of a host path under the root."""
        rel = os.path.relpath(host_path, self.root)
        return GUEST_ROOT if rel == "." else posixpath.join(GUEST_ROOT, rel.replace(os.sep, "/"))
