"""Private staging directories on the workspace's own filesystem, opened as fds.

An import is unpacked into a staging directory first and then renamed into
place, so staging lives on the same filesystem as /workspace: under the
scratch directory, which is inside the workspace on some backends. The
workspace can therefore reach a staging tree while it is being filled;
everything here hands out directory fds (opened without following links),
never paths, so swapping the scratch directory for a symlink can at worst
make the import fail.

Imports: protocol, the agent's file-system layer (`roost.agent.fs`) and the standard library only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from roost.agent.fs.dirfd import DIR_READ_FLAGS
from roost.agent.fs.paths import WorkspacePaths
from roost.protocol import OpError


@dataclass(frozen=True)
class Staging:
    """An empty private directory (`fd`, readable) and the identity of the scratch dir that holds it.

    `scratch` is (st_dev, st_ino): a mirroring import into the workspace
    root must not delete the scratch directory it is reading from.
    """

    fd: int
    scratch: tuple[int, int]


def _inside(paths: WorkspacePaths, scratch: str) -> str | None:
    """`scratch` relative to the workspace root, or None when it lies outside."""
    root = paths.root
    if scratch == root:
        return ""
    return scratch[len(root) + 1 :] if scratch.startswith(root + os.sep) else None


def _open_scratch(paths: WorkspacePaths, scratch: str, rel: str | None) -> int:
    if rel is None:  # the agent's own directory, out of the workspace's reach
        os.makedirs(scratch, mode=0o700, exist_ok=True)
        return os.open(scratch, DIR_READ_FLAGS)
    try:
        fd, _ = paths.beneath().open(rel, DIR_READ_FLAGS, make_dirs=True, follow_links=False)
    except OSError as exc:
        raise paths.error(exc, WorkspacePaths.to_guest(rel)) from None
    return fd


def _remove_if_empty(paths: WorkspacePaths, scratch: str, rel: str | None) -> None:
    try:
        if rel is None:
            os.rmdir(scratch)
        elif rel:
            found = paths.beneath().locate(rel, follow_final=False, follow_links=False)
            try:
                os.rmdir(found.name, dir_fd=found.dir_fd)
            finally:
                paths.beneath().release(found)
    except OSError:
        pass  # another staging dir is in use (or the workspace took the name)


def open_kept_dir(paths: WorkspacePaths, scratch_dir: str, name: str) -> int:
    """The private directory `name` under `scratch_dir`, made if missing and kept until `drop_kept_dir`.

    Raises:
        OSError, OpError: the scratch directory or `name` cannot be made or opened (a link there, say).
    """
    scratch = os.path.abspath(scratch_dir)
    scratch_fd = _open_scratch(paths, scratch, _inside(paths, scratch))
    try:
        try:
            os.mkdir(name, 0o700, dir_fd=scratch_fd)
        except FileExistsError:
            pass
        return os.open(name, DIR_READ_FLAGS, dir_fd=scratch_fd)
    finally:
        os.close(scratch_fd)


def drop_kept_dir(paths: WorkspacePaths, scratch_dir: str, name: str) -> None:
    """Remove the kept directory `name` if it is empty, and the scratch directory once that is empty too."""
    scratch = os.path.abspath(scratch_dir)
    rel = _inside(paths, scratch)
    try:
        scratch_fd = _open_scratch(paths, scratch, rel)
    except (OSError, OpError):
        return
    try:
        os.rmdir(name, dir_fd=scratch_fd)
    except OSError:
        return  # in use again, or not empty
    finally:
        os.close(scratch_fd)
    _remove_if_empty(paths, scratch, rel)


@contextmanager
def staging_dir(paths: WorkspacePaths, scratch_dir: str, prefix: str) -> Iterator[Staging]:
    """A fresh private directory under `scratch_dir`, removed afterwards (the scratch dir too, once empty)."""
    scratch = os.path.abspath(scratch_dir)
    rel = _inside(paths, scratch)
    scratch_fd = _open_scratch(paths, scratch, rel)
    try:
        st = os.fstat(scratch_fd)
        while True:
            name = f"{prefix}{os.urandom(6).hex()}"
            try:
                os.mkdir(name, 0o700, dir_fd=scratch_fd)
                break
            except FileExistsError:
                continue
        fd = os.open(name, DIR_READ_FLAGS, dir_fd=scratch_fd)
        try:
            yield Staging(fd, (st.st_dev, st.st_ino))
        finally:
            os.close(fd)
            shutil.rmtree(name, dir_fd=scratch_fd, ignore_errors=True)
    finally:
        os.close(scratch_fd)
        _remove_if_empty(paths, scratch, rel)
