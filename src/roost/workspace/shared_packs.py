"""A fork's children share their parent's content store: its packs are linked, not copied.

A pack is written once under a temporary name and never changed after it is
in place (the agent's `snapshots.content`), so one inode can serve many
stores: the file system's link count is the reference count, and a child
keeps every pack it shares after its parent, or the snapshot it came from,
is deleted. Each store lies below a directory its workspace can write, so
every component is opened without following a link, and each pack is
linked by the descriptor that was checked (a regular file), never by a
name that could have changed since. The receiving agent hashes every pack
it finds before trusting one. Only backends whose workspaces could change a
pack anyway share them (mock): a sandbox's process could keep a pack open
for writing from before it was shared.

Imports: backends (StoreAccess), errors and the standard library.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from roost.backends import StoreAccess
from roost.errors import StorageError

# The names the agent gives packs (`<16 hex>.pack`): nothing else in the directory is shared.
PACK_NAME = re.compile(r"[0-9a-f]{16}\.pack")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PACK_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def link_packs(parent_dir: Path, child_dir: Path, access: StoreAccess) -> int:
    """Link every pack of the parent's store into the child's (made if missing); how many were linked.

    Raises:
        StorageError: store_unshareable, when a store cannot be reached or a pack cannot be linked.
    """
    try:
        with _store(parent_dir, access.parts, make=False) as source:
            if source is None:
                return 0  # the parent never stored a content
            with _store(child_dir, access.parts, make=True) as target:
                assert target is not None
                return sum(_link(source, target, name) for name in os.listdir(source))
    except OSError as exc:
        raise StorageError(
            f"cannot share the parent's content store with the new workspace: {exc.strerror or exc}",
            code="store_unshareable",
            hint="check the disk and the workspace directories' owners; `doctor` may say more",
        ) from None


def _link(source: int, target: int, name: str) -> bool:
    if not PACK_NAME.fullmatch(name):
        return False
    fd = os.open(name, _PACK_FLAGS, dir_fd=source)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            # The checked inode itself, by its descriptor: a name swapped since cannot be what gets linked.
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=target, follow_symlinks=True)
        except FileExistsError:
            return False
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _store(ws_dir: Path, parts: tuple[str, ...], *, make: bool) -> Iterator[int | None]:
    """The pack directory below `ws_dir`, opened component by component without following links;
    None when it is missing and not to be made. A directory made gets its parent's owner (the
    workspace's root) and mode 0700, as the agent makes its own."""
    fd = os.open(ws_dir, _DIR_FLAGS)
    try:
        for part in parts:
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not make:
                    yield None
                    return
                owner = os.fstat(fd)
                os.mkdir(part, 0o700, dir_fd=fd)
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.fchown(inner, owner.st_uid, owner.st_gid)
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)
