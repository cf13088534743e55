"""Named snapshots of /workspace: create, compare, reset, delete.

A snapshot is a manifest (every path with kind, mode and content digest)
whose file contents live once in a shared `ContentStore`; `baseline` is the
one taken at create, after seeding. Taking one is a single scan that copies
each new content into one new pack; it is durable when `create` returns
(the pack and the manifest are synced, nothing per file). Comparing rescans
the tree with the stat cache, so only changed files are read; the last scan
and the manifests used last are kept in memory, so a diff of an unchanged
tree reads no JSON. Resetting (`restore.py`) rewrites only what differs and
removes what the snapshot does not have. Everything lives in the agent's
state dir, outside /workspace, and excludes service logs and agent records
by construction.

Imports: the agent's `fs` and `system` layers, this package, protocol and the standard library only.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from roost.agent.fs import dirfd, staging
from roost.agent.fs.atomic_json import write_json
from roost.agent.fs.dirtree import Pruner
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.snapshots.bundle import bundle_pieces, receive_bundle
from roost.agent.snapshots.content import ContentStore
from roost.agent.snapshots.restore import restore
from roost.agent.snapshots.set_aside import ASIDE_DIR, SetAside
from roost.agent.snapshots.trees import FILE, RACY_NS, SYMLINK, Entry, Keeper, Tree, scan
from roost.agent.system.clock import now_iso
from roost.protocol import Code, OpError
from roost.protocol.ops.snapshots import BASELINE, check_snapshot_name
from roost.protocol.records import path_key

EXCLUDED = frozenset({".roost-staging"})
# Manifests kept parsed in memory (a 20,000-entry one is a few MB): the ones diff and reset use over and over.
CACHED_MANIFESTS = 4


@dataclass(frozen=True)
class Change:
    path: str
    change: str  # added | deleted | modified | type_changed | mode_changed
    old: Entry | None
    new: Entry | None


def compare(old: Tree, new: Tree) -> list[Change]:
    """What changed from `old` to `new`, in tree order (the order every path list is sent in)."""
    changes = []
    for path in sorted(old.keys() | new.keys(), key=path_key):
        before, after = old.get(path), new.get(path)
        if before is None:
            changes.append(Change(path, "added", None, after))
        elif after is None:
            changes.append(Change(path, "deleted", before, None))
        elif before.kind != after.kind:
            changes.append(Change(path, "type_changed", before, after))
        elif not before.same_content(after):
            changes.append(Change(path, "modified", before, after))
        elif before.mode != after.mode and before.kind != SYMLINK:
            changes.append(Change(path, "mode_changed", before, after))
    return changes


class Snapshots:
    """Snapshots of one workspace root, kept under `state_dir`."""

    def __init__(self, state_dir: str, paths: WorkspacePaths, scratch_dir: str | None = None) -> None:
        """`scratch_dir`, on the workspace's filesystem, is where resets set directories aside (none: never)."""
        self.paths = paths
        self._dir = os.path.join(state_dir, "snapshots")
        self._index = os.path.join(state_dir, "tree-index.json")
        self.blobs = ContentStore(os.path.join(state_dir, "blobs"))
        # One operation at a time: they share the scan index.
        self.lock = threading.Lock()
        self._last_scan: tuple[Tree, int] | None = None  # the newest scan and when it began
        self._index_behind = False  # the index on disk is older than the newest scan
        self._manifests: dict[str, tuple[tuple[int, int, int], Tree]] = {}
        self._aside = None if scratch_dir is None else _set_aside(paths, scratch_dir)

    # -- persistence -----------------------------------------------------------
    def _read_tree(self, path: str) -> tuple[dict[str, Any], Tree]:
        with open(path) as fh:
            data = json.load(fh)
        tree = {row[0]: Entry.from_row(row) for row in data.pop("entries")}
        return data, tree

    def _manifest(self, name: str) -> str:
        return os.path.join(self._dir, f"{name}.json")

    def load(self, name: str) -> Tree:
        """Snapshot `name`'s tree (parsed once, then from memory while its manifest is unchanged).

        Callers must not change the tree they get.

        Raises:
            OpError: snapshot_not_found, invalid_argument for a bad name.
        """
        path = self._manifest(check_snapshot_name(name))
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._manifests.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
            tree = self._read_tree(path)[1]
        except FileNotFoundError:
            raise OpError(
                Code.SNAPSHOT_NOT_FOUND,
                f"no snapshot {name!r}",
                hint="see which snapshots there are (snapshot list)",
            ) from None
        self._manifests.pop(name, None)
        while len(self._manifests) >= CACHED_MANIFESTS:
            del self._manifests[next(iter(self._manifests))]
        self._manifests[name] = (key, tree)
        return tree

    def current(self, keeper: Keeper | None = None, prune: Pruner | None = None, *, save: bool = True) -> Tree:
        """Scan /workspace now (reusing hashes of unchanged files) and remember the scan.

        With `keeper`, every content it lacks is copied into it on the way.
        What `prune` excludes is left out of the scan; the hashes already
        cached for it are kept for the next full scan. The scan index on disk
        (what a restarted agent starts from) is rewritten only when the scan
        found something new; without `save`, not before `save_index`.
        """
        if self._last_scan is not None:
            previous, previous_at = self._last_scan
        else:
            try:
                meta, previous = self._read_tree(self._index)
                previous_at = int(meta.get("scanned_at_ns", 0))
            except (OSError, ValueError, KeyError, TypeError):
                previous, previous_at = {}, 0
        started = time.time_ns()
        tree = scan(self.paths.root_fd(), previous, EXCLUDED, previous_at, keeper=keeper, prune=prune)
        index = tree if prune is None else {**_still_trusted(previous, previous_at, tree), **tree}
        self._last_scan = (index, started)
        if index != previous:
            self._index_behind = True
        if save:
            self._save_scan()
        return tree

    def save_index(self) -> None:
        """Write the newest scan to the index on disk, if a scan left it behind."""
        with self.lock:
            self._save_scan()

    def _save_scan(self) -> None:
        if self._index_behind and self._last_scan is not None:
            index, started = self._last_scan
            write_json(self._index, {"scanned_at_ns": started, "entries": [e.to_row() for e in index.values()]})
            self._index_behind = False

    # -- operations ------------------------------------------------------------
    def create(self, name: str) -> dict[str, Any]:
        """Take snapshot `name` of /workspace now; durable (contents and manifest synced) when it returns.

        Raises:
            OpError: invalid_argument, snapshot_exists.
        """
        check_snapshot_name(name)
        if os.path.exists(self._manifest(name)):
            raise OpError(
                Code.SNAPSHOT_EXISTS,
                f"a snapshot named {name!r} already exists",
                hint="pick another name or delete the old one first",
            )
        with self.blobs.writing() as keeper:
            tree = self.current(keeper)
        return self._keep(name, tree, keeper.new_bytes)

    def _keep(self, name: str, tree: Tree, stored_bytes: int) -> dict[str, Any]:
        """Write snapshot `name`'s manifest (durable; one of that name is replaced) and describe it."""
        created = now_iso()
        # What taking it added to the store is kept with it, so a list tells it as create did.
        write_json(
            self._manifest(name),
            {
                "name": name,
                "created_at": created,
                "stored_bytes": stored_bytes,
                "entries": [e.to_row() for e in tree.values()],
            },
            durable=True,
        )
        self._manifests.pop(name, None)
        return {"name": name, "created_at": created, **self.totals(tree), "stored_bytes": stored_bytes}

    def bundle(self, name: str, *, with_contents: bool = True) -> Iterator[bytes]:
        """Snapshot `name` as a bundle (`bundle.py`); hold `lock` while it is read.

        Raises:
            OpError: snapshot_not_found, invalid_argument.
        """
        return bundle_pieces(self.load(name), self.blobs, with_contents=with_contents)

    def receive(self, name: str, chunks: Iterator[bytes]) -> dict[str, Any]:
        """Take a bundle as snapshot `name` (replacing one of that name, the baseline too), then make
        /workspace hold it. A bad bundle is refused before anything but its discarded pack is written;
        so is one whose contents are in a pack (linked in by the host) that does not hold what it says.

        Raises:
            OpError: invalid_argument (a bad bundle), and reset's path errors.
        """
        check_snapshot_name(name)
        self.blobs.reload()  # the host may have linked a sender's packs in since the index was read
        if (bad := self.blobs.unverified_pack()) is not None:
            raise OpError(
                Code.INVALID_ARGUMENT,
                f"not a usable snapshot bundle: the stored pack {bad} does not hold what its index says",
                hint="fork from a workspace whose content store is intact, or without shared packs",
            )
        with self.blobs.writing() as writer:
            received = receive_bundle(chunks, writer)
        kept = self._keep(name, received.tree, received.stored_bytes)
        counts = self.reset(name)
        # What the replaced snapshot alone held goes; packs shared with the sender stay whole (a
        # repack would copy what the link shares).
        self._collect_garbage(repack=False)
        return {**kept, "restored": counts["restored"]}

    @contextmanager
    def _opened(self, rel: str) -> Iterator[int | None]:
        """The regular file a scan found at `rel`, opened through dir fds with no link followed; None if it changed."""
        try:
            with self.paths.locate(rel, follow_final=False, follow_links=False) as found:
                opened = dirfd.open_regular(found.dir_fd, found.name)
        except OpError:
            opened = None
        try:
            yield None if opened is None else opened[0]
        finally:
            if opened is not None:
                os.close(opened[0])

    def read_current(self, rel: str) -> bytes:
        """What the workspace file `rel` holds now (b"" when it is gone or not a file)."""
        with self._opened(rel) as fd:
            if fd is None:
                return b""
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)

    @staticmethod
    def totals(tree: Tree) -> dict[str, int]:
        files = [e for e in tree.values() if e.kind == FILE]
        return {"files": len(files), "size_bytes": sum(e.size for e in files)}

    def list(self, names_only: bool = False) -> list[dict[str, Any]]:
        """Every snapshot, the baseline first; `names_only` skips reading the manifests."""
        if not os.path.isdir(self._dir):
            return []
        names = sorted(name[: -len(".json")] for name in os.listdir(self._dir) if name.endswith(".json"))
        if names_only:
            return [{"name": name} for name in sorted(names, key=lambda n: (n != BASELINE, n))]
        found = []
        for name in names:
            with open(self._manifest(name)) as fh:
                data = json.load(fh)
            # Totals straight from the rows: building 10,000 Entry objects per manifest is what costs.
            sizes = [int(row[3]) for row in data["entries"] if row[1] == FILE]
            found.append(
                {
                    "name": data["name"],
                    "created_at": data["created_at"],
                    "files": len(sizes),
                    "size_bytes": sum(sizes),
                    "stored_bytes": data.get("stored_bytes"),  # None: taken before roost kept it
                }
            )
        return sorted(found, key=lambda s: (s["name"] != BASELINE, s["created_at"], s["name"]))

    def delete(self, name: str) -> None:
        if name == BASELINE:
            raise OpError(Code.INVALID_ARGUMENT, "the baseline cannot be deleted", hint="it is what diff compares to")
        self.load(name)
        os.unlink(self._manifest(name))
        self._manifests.pop(name, None)
        self._collect_garbage()

    def _collect_garbage(self, *, repack: bool = True) -> None:
        live = {
            e.digest
            for name in os.listdir(self._dir)
            if name.endswith(".json")
            for e in self.load(name[: -len(".json")]).values()
            if e.digest
        }
        self.blobs.collect(live, repack=repack)

    def reset(self, name: str) -> dict[str, int]:
        """Make /workspace equal to snapshot `name`: content, modes, links; extra paths removed.

        Raises:
            OpError: snapshot_not_found, and path errors when the workspace races the reset.
        """
        target = self.load(name)
        current = self.current()
        scanned_at = self._last_scan[1] if self._last_scan is not None else 0
        came_back: Tree = {}
        # No rescan to refresh the index: what was written has new stat data, so the next scan hashes it;
        # directories renamed back kept theirs, and the next scan reuses it.
        counts = restore(self.paths, self.blobs, target, current, self._aside, scanned_at, came_back)
        if came_back and self._last_scan is not None:
            self._last_scan = ({**self._last_scan[0], **came_back}, scanned_at)
        return counts


def _still_trusted(previous: Tree, previous_at_ns: int, scanned: Tree) -> Tree:
    """Cached hashes a pruned scan did not look at and may carry into a newer index.

    Only those the previous scan could already trust: under the newer
    scan's time a racily-clean hash would pass for a clean one.
    """
    trusted_before = previous_at_ns - RACY_NS
    return {
        path: entry
        for path, entry in previous.items()
        if entry.kind == FILE and path not in scanned and max(entry.mtime_ns, entry.ctime_ns) < trusted_before
    }


def _set_aside(paths: WorkspacePaths, scratch_dir: str) -> SetAside:
    return SetAside(
        lambda: staging.open_kept_dir(paths, scratch_dir, ASIDE_DIR),
        lambda: staging.drop_kept_dir(paths, scratch_dir, ASIDE_DIR),
    )
