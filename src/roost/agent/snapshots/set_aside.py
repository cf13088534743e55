"""Directories a reset removed, set aside for a while, so a later reset can rename one back whole.

Resetting to the baseline and then back to a snapshot of 20,000 new files
would delete 20,000 files and create them again, and creating files is
what filesystems do slowest. Instead a reset renames each large directory
it removes into `<scratch>/reset-aside/` and remembers what its scan saw
there. A later reset that wants a directory at that same path scans the
set-aside one (reusing the stat data, as every rescan does, so only what
changed is read), and when every path, kind, mode, content and link target
matches the snapshot, renames it back in one step. What the snapshot store
holds is never involved: nothing here can change a stored content.

Only the latest reset's directories are kept: the rest are removed in the
background when the next reset ends, or `KEEP_SECONDS` after they were set
aside. The scratch directory is on the workspace's filesystem (renames must
stay on one filesystem); where that is inside /workspace it is
`.roost-staging`, which no scan, diff or snapshot includes. Every step goes
by directory fds opened without following links, and a directory swapped
while it was checked is never renamed back.

Imports: protocol, the agent's `fs` layer, this package and the standard library only.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from roost.agent.fs.dirfd import DIR_READ_FLAGS
from roost.agent.snapshots.trees import SYMLINK, Tree, scan
from roost.protocol import OpError

ASIDE_DIR = "reset-aside"
# Directories with fewer entries below them are deleted at once: a rename saves little there.
MIN_ENTRIES = 100
KEEP_SECONDS = 300.0


@dataclass(frozen=True)
class Kept:
    """One set-aside directory: its name in the aside directory and what the scan saw under it."""

    name: str
    entries: Tree  # paths relative to the directory itself
    scanned_at_ns: int


def below(tree: Tree, ordered: list[str], rel: str) -> Tree:
    """The entries of `tree` under directory `rel`, re-rooted at it (`ordered`: the tree's paths, sorted)."""
    from bisect import bisect_left

    prefix = rel + "/"
    found: Tree = {}
    for index in range(bisect_left(ordered, prefix), len(ordered)):
        path = ordered[index]
        if not path.startswith(prefix):
            break
        found[path[len(prefix) :]] = tree[path]
    return found


def _same(found: Tree, want: Tree) -> bool:
    if found.keys() != want.keys():
        return False
    return all(
        f.same_content(w) and (f.kind == SYMLINK or f.mode == w.mode) for f, w in ((found[p], want[p]) for p in want)
    )


@dataclass
class Session:
    """One reset's use of the aside directory (open as `fd`)."""

    fd: int
    offered: dict[str, Kept]
    scanned_at_ns: int
    kept: dict[str, Kept] = field(default_factory=dict)
    taken: Tree = field(default_factory=dict)  # what came back, by workspace path, as last scanned

    def put(self, at: int, name: str, rel: str, entries: Tree) -> bool:
        """Move the directory `name` in `at` (workspace path `rel`) aside; False when it was not moved."""
        if len(entries) < MIN_ENTRIES:
            return False
        aside = f"{len(self.kept)}-{os.urandom(6).hex()}"
        try:
            os.rename(name, aside, src_dir_fd=at, dst_dir_fd=self.fd)
        except OSError:
            return False  # another filesystem (EXDEV), or gone: the caller deletes it
        self.kept[rel] = Kept(aside, entries, self.scanned_at_ns)
        return True

    def take(self, at: int, name: str, rel: str, want: Tree) -> bool:
        """Rename back the directory set aside from `rel` if it holds exactly `want`; whether it did."""
        kept = self.offered.pop(rel, None)
        if kept is None:
            return False  # (what is not taken back is removed once the reset ends)
        try:
            fd = os.open(kept.name, DIR_READ_FLAGS, dir_fd=self.fd)
        except OSError:
            return False
        try:
            held = os.fstat(fd)
            found = scan(fd, kept.entries, previous_at_ns=kept.scanned_at_ns)
            if not _same(found, want):
                return False
            try:
                os.rename(kept.name, name, src_dir_fd=self.fd, dst_dir_fd=at)
            except OSError:
                return False  # something is in the way now
            placed = os.stat(name, dir_fd=at, follow_symlinks=False)
            if (placed.st_dev, placed.st_ino) != (held.st_dev, held.st_ino) or not stat.S_ISDIR(placed.st_mode):
                # Swapped after it was checked: take the stranger out, and restore the usual way.
                shutil.rmtree(name, dir_fd=at, ignore_errors=True)
                return False
            # Renaming the directory left its files' stat data as the check saw it: later scans reuse it.
            self.taken.update((f"{rel}/{path}", replace(entry, path=f"{rel}/{path}")) for path, entry in found.items())
            return True
        finally:
            os.close(fd)


class SetAside:
    """The directories the latest reset set aside, for one workspace's agent.

    `open_dir` opens the aside directory (made if missing); `drop_dir`
    removes it once empty. Sessions run one at a time (the caller's
    snapshot lock); removal runs on a background thread.
    """

    def __init__(self, open_dir: Callable[[], int], drop_dir: Callable[[], None]) -> None:
        self._open_dir = open_dir
        self._drop_dir = drop_dir
        self._kept: dict[str, Kept] = {}
        self._lock = threading.Lock()
        self._generation = 0

    @contextmanager
    def session(self, scanned_at_ns: int) -> Iterator[Session | None]:
        """Offer what the last reset set aside; keep what this one sets aside; remove the rest afterwards.

        Yields None when there is no aside directory to be had.
        """
        with self._lock:
            try:
                fd = self._open_dir()
            except (OSError, OpError):  # no aside directory this time: the reset deletes, as always
                yield None
                return
            session = Session(fd, dict(self._kept), scanned_at_ns)
            try:
                yield session
            finally:
                self._kept = session.kept
                self._generation += 1
                keep = {k.name for k in session.kept.values()}
                self._clear_later(os.dup(fd), keep, self._generation)
                os.close(fd)

    def _clear_later(self, fd: int, keep: set[str], generation: int) -> None:
        """In the background: remove all but `keep` from the aside directory now, and `keep` after KEEP_SECONDS.

        Each step first checks that no later reset has taken over the directory.
        """

        def clear() -> None:
            try:
                if not self._clear(fd, keep, generation):
                    return
                if keep:
                    time.sleep(KEEP_SECONDS)
                    self._clear(fd, set(), generation)
            finally:
                os.close(fd)

        threading.Thread(target=clear, name="reset-aside-clear", daemon=True).start()

    def _clear(self, fd: int, keep: set[str], generation: int) -> bool:
        """Remove all but `keep`, and the directory itself once empty; False when a later reset owns it now."""
        with self._lock:
            if self._generation != generation:
                return False
            if not keep:
                self._kept = {}
            try:
                doomed = [name for name in os.listdir(fd) if name not in keep]
            except OSError:
                doomed = []
        for name in doomed:  # outside the lock: a reset may run meanwhile, and never uses these
            shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
        with self._lock:
            if self._generation == generation and not keep:
                self._drop_dir()
        return True
