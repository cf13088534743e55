"""Reset: make /workspace equal to a snapshot's tree, touching only what differs.

Paths that the snapshot lacks, or holds as another kind, go first (children
before their directories, a removed directory taking its children along);
then every missing or different entry is written in sorted order, parents
before children; directory modes come last, deepest first, so a read-only
directory is set after its children. Each change is made relative to
directory fds opened without following any link (`DirCursor`), so a
workspace racing the reset cannot turn it into a write or delete outside
/workspace. File contents are copied out of the content store, never
linked: a later write in the workspace cannot reach a stored content.
A file that did not exist is created in place (O_EXCL); one that did is
replaced atomically by a temporary file. Large directories removed are set
aside, and renamed back whole by a later reset that wants them exactly as
they are (`set_aside.py`).

Imports: the agent's `fs` layer, this package and the standard library only.
"""

from __future__ import annotations

import os
import shutil
import stat
from contextlib import nullcontext

from roost.agent.fs import dirfd
from roost.agent.fs.cursor import DirCursor
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.snapshots.content import ContentStore, PackReader
from roost.agent.snapshots.set_aside import Session, SetAside, below
from roost.agent.snapshots.trees import DIR, FILE, SYMLINK, Entry, Tree

KEPT_KINDS = (FILE, DIR, SYMLINK)  # sockets and fifos are not kept


def restore(
    paths: WorkspacePaths,
    blobs: ContentStore,
    target: Tree,
    current: Tree,
    aside: SetAside | None = None,
    scanned_at_ns: int = 0,
    came_back: Tree | None = None,
) -> dict[str, int]:
    """Turn the tree `current` (a scan of the root begun at `scanned_at_ns`) into `target`.

    With `aside`, large directories removed are set aside rather than
    deleted, and directories a previous reset set aside are renamed back
    when they hold exactly what `target` wants; `came_back` receives their
    entries (stat data included: a rename leaves it as the check saw it).
    Returns counts of the paths restored and removed.

    Raises:
        OpError: a path of the workspace's making gets in the way (a parent turned into a link, say).
        OSError: the store or the disk failed.
    """
    with aside.session(scanned_at_ns) if aside is not None else nullcontext() as session:
        counts = _restore(paths, blobs, target, current, session)
        if session is not None and came_back is not None:
            came_back.update(session.taken)
        return counts


def _restore(
    paths: WorkspacePaths, blobs: ContentStore, target: Tree, current: Tree, session: Session | None
) -> dict[str, int]:
    doomed = {p for p, e in current.items() if p not in target or target[p].kind != e.kind}
    root = paths.root_fd()
    path = ""
    try:
        with DirCursor(root) as cursor:
            ordered_current = sorted(current) if session is not None else []
            for path in sorted(doomed, reverse=True):  # children before their directories
                if _inside_doomed_dir(path, doomed, current):
                    continue
                moved = (
                    session is not None
                    and current[path].kind == DIR
                    and _set_aside(cursor, session, path, below(current, ordered_current, path))
                )
                if not moved:
                    _remove(cursor, path)
        restored = 0
        reset_dirs = []
        taken: list[str] = []
        ordered_target = sorted(target)
        with DirCursor(root, make=True) as cursor, blobs.reading() as reader:
            for path in ordered_target:  # parents before their children
                if taken and path.startswith(taken[-1] + "/"):
                    continue  # came back with its directory
                want, have = target[path], None if path in doomed else current.get(path)
                if want.kind not in KEPT_KINDS:
                    continue
                if want.kind == DIR and have is None and session is not None:
                    wanted = below(target, ordered_target, path)
                    if session.take(*cursor.parent(path), path, wanted):
                        taken.append(path)
                        restored += 1 + len(wanted)
                        reset_dirs.append(path)
                        continue
                if have is not None and have.same_content(want):
                    if have.mode == want.mode or want.kind == SYMLINK:
                        continue
                    if want.kind == FILE:
                        dirfd.set_mode(*cursor.parent(path), want.mode)
                        continue
                else:
                    _write(cursor, reader, path, want, exists=have is not None)
                    restored += 1
                if want.kind == DIR:
                    reset_dirs.append(path)
        with DirCursor(root) as cursor:
            for path in sorted(reset_dirs, reverse=True):
                dirfd.set_mode(*cursor.parent(path), target[path].mode)
    except OSError as exc:
        raise paths.error(exc, paths.to_guest(path)) from None
    return {"restored": restored, "removed": len(doomed)}


def _inside_doomed_dir(path: str, doomed: set[str], current: Tree) -> bool:
    """Whether a directory above `path` goes too (removing it takes `path` along)."""
    parent = path.rpartition("/")[0]
    while parent:
        if parent in doomed and current[parent].kind == DIR:
            return True
        parent = parent.rpartition("/")[0]
    return False


def _set_aside(cursor: DirCursor, session: Session, rel: str, entries: Tree) -> bool:
    try:
        at, name = cursor.parent(rel)
    except OSError:
        return False  # its parent is gone or no longer ours: `_remove` finds nothing to do either
    return session.put(at, name, rel, entries)


def _remove(cursor: DirCursor, rel: str) -> None:
    try:
        at, name = cursor.parent(rel)
        st = os.stat(name, dir_fd=at, follow_symlinks=False)
    except OSError:
        return  # already gone, or a parent is no longer a directory of ours: nothing to remove there
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=at, ignore_errors=True)  # fd-based, never through a link
        return
    try:
        os.unlink(name, dir_fd=at)
    except FileNotFoundError:
        pass


def _write(cursor: DirCursor, reader: PackReader, rel: str, want: Entry, *, exists: bool) -> None:
    """Put `want` at `rel`: a directory made, a link or a file written (in place when nothing was there)."""
    at, name = cursor.parent(rel)
    if want.kind == DIR:
        try:
            os.mkdir(name, 0o700, dir_fd=at)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(name, dir_fd=at, follow_symlinks=False).st_mode):
                raise
        return
    if exists and stat.S_ISDIR(os.stat(name, dir_fd=at, follow_symlinks=False).st_mode):
        shutil.rmtree(name, dir_fd=at)
    if want.kind == FILE and not exists and _create(at, name, reader, want):
        return
    if want.kind == SYMLINK:
        temp = dirfd.temp_symlink(at, ".roost-reset-", str(want.target))
    else:
        fd, temp = dirfd.create_temp(at, ".roost-reset-")
        try:
            _fill(fd, reader, want)
        except BaseException:
            dirfd.discard(at, temp)
            raise
    try:
        dirfd.replace(at, temp, name)
    except BaseException:
        dirfd.discard(at, temp)
        raise


def _create(at: int, name: str, reader: PackReader, want: Entry) -> bool:
    """Write a file where nothing was; False when something is there now after all (the caller replaces it)."""
    try:
        fd = os.open(name, dirfd.NEW_FILE_FLAGS, 0o600, dir_fd=at)
    except FileExistsError:
        return False
    try:
        _fill(fd, reader, want)
    except BaseException:
        dirfd.discard(at, name)
        raise
    return True


def _fill(fd: int, reader: PackReader, want: Entry) -> None:
    """Copy the content in, set the mode, close `fd`."""
    try:
        reader.copy_to(str(want.digest), fd)
        os.fchmod(fd, want.mode)
    finally:
        os.close(fd)
