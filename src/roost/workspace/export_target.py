"""Where an export lands: a staging directory beside a host path that must not exist yet.

The output's directory is opened without following links (`host_tree`);
the export is built in a private (0700) staging directory made there, then
moved to the output name last, so a half-written export is never visible
and an existing path is never written over: a file is published with
`link()` (which fails if the name exists) and a directory with `rename()`
after checking the name is free (rename cannot replace a file, a symlink
or a non-empty directory).

Imports: errors, workspace.host_tree and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from typing import BinaryIO

from roost.errors import ConflictError, InvalidArgument, NotFound
from roost.workspace.host_tree import DIR_FLAGS, HostPath, open_below, open_parent

__all__ = ["OUTPUT", "ExportTarget", "export_target"]

OUTPUT = "out"
EXISTS_HINT = "choose a new output path"


def _exists(shown: str) -> ConflictError:
    return ConflictError(f"{shown} already exists", code="output_exists", hint=EXISTS_HINT)


class ExportTarget:
    """The open output directory, the name to create in it, and a staging directory beside it."""

    def __init__(self, where: HostPath, parent_fd: int, staging: str) -> None:
        self.where = where
        self.parent_fd = parent_fd
        self.name = where.parts[-1]
        self.staging = staging
        self.staging_fd = os.open(staging, DIR_FLAGS, dir_fd=parent_fd)
        self.shown_path = os.path.join(where.anchor, *where.parts)

    def scratch_file(self, name: str, mode: int = 0o644) -> BinaryIO:
        """A new file in the staging directory, open for reading and writing."""
        fd = os.open(
            name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.staging_fd
        )
        return os.fdopen(fd, "w+b")

    def scratch_dir(self, name: str) -> int:
        """A new directory in the staging directory; the caller closes the fd returned."""
        os.mkdir(name, 0o755, dir_fd=self.staging_fd)
        return os.open(name, DIR_FLAGS, dir_fd=self.staging_fd)

    def publish(self, staged: str) -> None:
        """Move `staged` (a path below the staging directory) to the output name.

        Raises:
            ConflictError: output_exists when something took the name meanwhile.
        """
        *dirs, leaf = staged.split("/")
        source_dir = open_below(self.staging_fd, dirs)
        try:
            if stat.S_ISDIR(os.lstat(leaf, dir_fd=source_dir).st_mode):
                self.refuse_existing()
                os.rename(leaf, self.name, src_dir_fd=source_dir, dst_dir_fd=self.parent_fd)
                return
            try:
                os.link(leaf, self.name, src_dir_fd=source_dir, dst_dir_fd=self.parent_fd, follow_symlinks=False)
            except FileExistsError:
                raise _exists(self.where.shown) from None
            os.unlink(leaf, dir_fd=source_dir)
        finally:
            os.close(source_dir)

    def refuse_existing(self) -> None:
        """Raises: ConflictError: output_exists when anything (a dangling symlink too) has the output name."""
        try:
            os.lstat(self.name, dir_fd=self.parent_fd)
        except FileNotFoundError:
            return
        raise _exists(self.where.shown)

    def close(self) -> None:
        os.close(self.staging_fd)
        shutil.rmtree(self.staging, dir_fd=self.parent_fd, ignore_errors=True)


@contextlib.contextmanager
def export_target(where: HostPath) -> Iterator[ExportTarget]:
    """Open the output's directory, check the name is free, and make the staging directory; clean up after.

    Raises:
        ConflictError: output_exists.
        InvalidArgument: output_dir_missing; path_not_allowed when the way to it passes through a symlink.
    """
    if not where.parts:
        raise _exists(where.shown)
    try:
        parent_fd = open_parent(where, missing="output_dir_missing")
    except NotFound:
        raise InvalidArgument(
            f"the directory of {where.shown} does not exist",
            code="output_dir_missing",
            hint="create the directory first, or choose an output in an existing one",
        ) from None
    try:
        staging = f".{where.parts[-1][:64]}.roost-{secrets.token_hex(6)}"
        os.mkdir(staging, 0o700, dir_fd=parent_fd)
        target = ExportTarget(where, parent_fd, staging)
        try:
            target.refuse_existing()
            yield target
        finally:
            target.close()
    finally:
        os.close(parent_fd)
