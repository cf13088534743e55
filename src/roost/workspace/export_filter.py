"""What may cross from a workspace to the host: an export's tar, judged and rewritten on the host.

The agent's tar is untrusted (root in a workspace can make its agent send
anything), so every rule is applied here, to the members themselves:

- names are relative without `..`, each path appears once, and nothing sits
  below a non-directory;
- only regular files, directories, symlinks and hard links cross (no
  devices, fifos or other special files);
- a symlink crosses only when its target is relative and, resolved through
  the exported members themselves, stays inside the exported tree;
- a hard link crosses only when it names a regular file exported before it;
- setuid, setgid and sticky bits and group/other write bits are stripped;
  owners become the exporting user and extended attributes are dropped.

Whatever fails a rule is skipped and listed (`SkippedEntry`). A first pass
over the member headers makes the plan; a second pass writes what it kept,
either as a fresh tar stream (`write_tar`) or as files created relative to
directory fds under a directory the caller made and nothing else can write
(`write_tree`), so no path the workspace chose is ever followed.

Imports: models, workspace.host_tree and the standard library only.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections import deque
from dataclasses import dataclass, field
from typing import BinaryIO

from roost.models import SkippedEntry
from roost.workspace.host_tree import open_below

__all__ = ["ExportPlan", "Written", "plan_export", "safe_mode", "write_tar", "write_tree"]

CHUNK_BYTES = 1024 * 1024
MAX_LINK_HOPS = 40  # as the kernel: a longer chain does not resolve
MAX_LISTED = 1000
MAX_MTIME = 2**33  # beyond year 2200: clamped, as is anything before 1970
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

FILE, DIR, SYMLINK, HARDLINK, IMPLICIT, SKIPPED = "file", "dir", "symlink", "hardlink", "implicit", "skipped"


def safe_mode(mode: int, *, directory: bool) -> int:
    """`mode` without setuid, setgid, sticky or group/other write; a directory stays usable by its owner."""
    kept = stat.S_IMODE(mode) & 0o755
    return kept | 0o700 if directory else kept


@dataclass(frozen=True)
class _Kept:
    parts: tuple[str, ...]
    kind: str
    mode: int
    mtime: int
    link: str = ""  # a symlink's target, or the member path a hard link names


@dataclass
class ExportPlan:
    """Which members (by position in the stream) cross, the directories they need, and what was skipped."""

    kept: dict[int, _Kept] = field(default_factory=dict)
    # Parents no member names, created (0755) before the member at that position.
    implicit: dict[int, list[tuple[str, ...]]] = field(default_factory=dict)
    skipped: list[SkippedEntry] = field(default_factory=list)
    skipped_count: int = 0

    def skip(self, path: str, reason: str, detail: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED:
            self.skipped.append(SkippedEntry(path, reason, detail))

    @property
    def empty(self) -> bool:
        return not self.kept


class LoneEntryMismatch(tarfile.TarError):
    """A single-entry export whose archive holds more than one entry, or a directory."""


@dataclass(frozen=True)
class Written:
    files: int
    bytes: int


def _shown(name: str) -> str:
    """A name as text for a sentence (`detail`): bytes that are not UTF-8 become `\\xNN`.

    The `path` of a skipped entry keeps the name itself (its bytes, as `os.fsdecode` has them).
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _parts(name: str) -> tuple[str, ...] | None:
    """The components of a member name, or None when it is absolute or climbs with `..`."""
    if name.startswith("/"):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    return None if ".." in parts else parts


def _special(member: tarfile.TarInfo) -> str:
    if member.ischr():
        return "a character device"
    if member.isblk():
        return "a block device"
    if member.isfifo():
        return "a fifo"
    return f"an entry of tar type {member.type!r}"


def _mtime(member: tarfile.TarInfo) -> int:
    return min(max(int(member.mtime), 0), MAX_MTIME)


class _Planner:
    def __init__(self, lone: bool) -> None:
        self.lone = lone
        self.seen = False
        self.plan = ExportPlan()
        self.nodes: dict[tuple[str, ...], str] = {}
        self.links: dict[tuple[str, ...], str] = {}  # every symlink member, kept or not, for resolving
        self.pending: dict[tuple[str, ...], int] = {}  # relative symlinks awaiting the whole tree

    def skip(self, parts: tuple[str, ...] | None, name: str, reason: str, detail: str) -> None:
        if parts:
            self.nodes.setdefault(parts, SKIPPED)
        self.plan.skip(name, reason, detail)

    def parents_ok(self, index: int, parts: tuple[str, ...], name: str) -> bool:
        missing = []
        for depth in range(1, len(parts)):
            state = self.nodes.get(parts[:depth])
            if state is None:
                missing.append(parts[:depth])
            elif state == SKIPPED:
                self.skip(parts, name, "parent_skipped", f"inside {'/'.join(parts[:depth])!r}, which was skipped")
                return False
            elif state not in (DIR, IMPLICIT):
                self.skip(parts, name, "parent_not_directory", f"below {'/'.join(parts[:depth])!r}, not a directory")
                return False
        for parent in missing:
            self.nodes[parent] = IMPLICIT
        if missing:
            self.plan.implicit[index] = missing
        return True

    def add(self, index: int, member: tarfile.TarInfo) -> None:
        name = member.name
        if self.lone and (self.seen or member.isdir()):
            # Where a lone entry is published, a tree would put its links' `..` one level
            # above the output: never trust the agent's word that it sent one entry.
            raise LoneEntryMismatch("the workspace was asked for a single entry but sent a tree")
        self.seen = True
        parts = _parts(name)
        if parts is None:
            self.skip(None, name, "unsafe_name", "an absolute name or one with '..'")
            return
        if not parts:
            if not member.isdir():
                self.skip(None, name, "unsafe_name", "names the exported tree itself")
            return  # "." : the top directory, which the host makes itself
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            self.skip(parts, name, "special_file", f"{_special(member)}; only files, directories and links cross")
            return
        if not self.parents_ok(index, parts, name):
            return
        state = self.nodes.get(parts)
        if state is not None and not (state == IMPLICIT and member.isdir()):
            self.plan.skip(name, "duplicate", "appears more than once in the archive")
            return
        if member.isdir():
            self.keep(index, _Kept(parts, DIR, safe_mode(member.mode, directory=True), _mtime(member)))
        elif member.isreg():
            self.keep(index, _Kept(parts, FILE, safe_mode(member.mode, directory=False), _mtime(member)))
        elif member.issym():
            self.links[parts] = member.linkname
            if not member.linkname or member.linkname.startswith("/"):
                self.skip(parts, name, "absolute_symlink", f"points at the absolute path {_shown(member.linkname)!r}")
                return
            self.keep(index, _Kept(parts, SYMLINK, 0o777, _mtime(member), member.linkname))
            self.pending[parts] = index
        else:
            target = _parts(member.linkname)
            if not target or self.nodes.get(target) not in (FILE, HARDLINK):
                detail = f"a hard link to {_shown(member.linkname)!r}, which is not a file exported before it"
                self.skip(parts, name, "hardlink_outside", detail)
                return
            self.keep(index, _Kept(parts, HARDLINK, 0, _mtime(member), "/".join(target)))

    def keep(self, index: int, kept: _Kept) -> None:
        self.nodes[kept.parts] = kept.kind
        self.plan.kept[index] = kept

    def stays_inside(self, parts: tuple[str, ...]) -> bool:
        """Whether resolving the symlink at `parts` through the exported links ends inside the tree."""
        if self.lone and len(parts) == 1:
            return False  # a lone link: its directory on the host is not part of the export
        where = list(parts[:-1])
        todo = deque(self.links[parts].split("/"))
        hops = 0
        while todo:
            part = todo.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if not where:
                    return False
                where.pop()
                continue
            where.append(part)
            target = self.links.get(tuple(where))
            if target is not None:
                hops += 1
                if hops > MAX_LINK_HOPS or not target or target.startswith("/"):
                    return False
                where.pop()
                todo.extendleft(reversed(target.split("/")))
        return True

    def finish(self) -> ExportPlan:
        for parts, index in self.pending.items():
            if not self.stays_inside(parts):
                del self.plan.kept[index]
                self.nodes[parts] = SKIPPED
                target = _shown(self.links[parts])
                self.plan.skip("/".join(parts), "symlink_escapes", f"points outside the export ({target!r})")
        return self.plan


def plan_export(archive: BinaryIO, *, lone: bool) -> ExportPlan:
    """Judge every member of the tar in `archive` (read from its current position).

    `lone` says the export is a single non-directory entry: a symlink then has
    nothing inside the export to point at, and is skipped.

    Raises:
        LoneEntryMismatch: `lone`, but the archive holds more than that one entry.
        tarfile.TarError: the stream is not a readable tar.
    """
    planner = _Planner(lone)
    with tarfile.open(fileobj=archive, mode="r|") as tar:
        for index, member in enumerate(tar):
            planner.add(index, member)
    return planner.finish()


def _header(kept: _Kept, kind: bytes, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo("/".join(kept.parts))
    info.type = kind
    info.mode = kept.mode
    info.mtime = kept.mtime
    info.size = size
    info.uid, info.gid = os.getuid(), os.getgid()
    info.linkname = kept.link
    return info


_TAR_TYPES = {FILE: tarfile.REGTYPE, DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE, HARDLINK: tarfile.LNKTYPE}


def write_tar(archive: BinaryIO, plan: ExportPlan, out: BinaryIO) -> Written:
    """Write the members `plan` kept to `out` as a new tar, with fresh headers.

    Raises:
        tarfile.TarError, OSError: reading `archive` or writing `out` failed.
    """
    files = written = 0
    with (
        tarfile.open(fileobj=archive, mode="r|") as source,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for index, member in enumerate(source):
            for parent in plan.implicit.get(index, ()):
                tar.addfile(_header(_Kept(parent, DIR, 0o755, 0), tarfile.DIRTYPE))
            kept = plan.kept.get(index)
            if kept is None:
                continue
            if kept.kind == FILE:
                tar.addfile(_header(kept, tarfile.REGTYPE, member.size), source.extractfile(member))
                written += member.size
            else:
                tar.addfile(_header(kept, _TAR_TYPES[kept.kind]))
            files += kept.kind in (FILE, HARDLINK)
    return Written(files, written)


class _TreeWriter:
    """Creates the kept members under `root_fd`, every path reached through directory fds."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.cached: tuple[tuple[str, ...], int] | None = None
        self.dirs: list[_Kept] = []
        self.implicit: set[tuple[str, ...]] = set()

    def dir_fd(self, parts: tuple[str, ...]) -> int:
        """An fd of the directory `parts` below the root (cached for the next member, which is usually a sibling)."""
        if self.cached is not None and self.cached[0] == parts:
            return self.cached[1]
        fd = open_below(self.root_fd, parts)
        self.drop_cache()
        self.cached = (parts, fd)
        return fd

    def drop_cache(self) -> None:
        if self.cached is not None:
            os.close(self.cached[1])
            self.cached = None

    def create(self, kept: _Kept, source: tarfile.TarFile, member: tarfile.TarInfo) -> int:
        """Create one member; return the bytes written."""
        parent = self.dir_fd(kept.parts[:-1])
        name = kept.parts[-1]
        times = (kept.mtime, kept.mtime)
        if kept.kind == DIR:
            if kept.parts not in self.implicit:  # else made for earlier members, which the archive put first
                os.mkdir(name, 0o700, dir_fd=parent)  # its own mode once everything is inside
            self.dirs.append(kept)
            return 0
        if kept.kind == SYMLINK:
            os.symlink(kept.link, name, dir_fd=parent)
            os.utime(name, times, dir_fd=parent, follow_symlinks=False)
            return 0
        if kept.kind == HARDLINK:
            target = tuple(kept.link.split("/"))
            source_dir = os.dup(self.dir_fd(target[:-1]))
            try:
                parent = self.dir_fd(kept.parts[:-1])
                os.link(target[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(source_dir)
            return 0
        data = source.extractfile(member)
        fd = os.open(name, CREATE_FLAGS, 0o600, dir_fd=parent)
        written = 0
        with os.fdopen(fd, "wb") as out:
            while data is not None and (chunk := data.read(CHUNK_BYTES)):
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fchmod(fd, kept.mode)
            os.utime(fd, times)
        return written

    def mkdir_implicit(self, parts: tuple[str, ...]) -> None:
        os.mkdir(parts[-1], 0o755, dir_fd=self.dir_fd(parts[:-1]))
        self.implicit.add(parts)

    def finish(self) -> None:
        """Directory modes and times last, deepest first, so writing into them needed no lifted modes."""
        self.drop_cache()
        for kept in sorted(self.dirs, key=lambda k: len(k.parts), reverse=True):
            fd = self.dir_fd(kept.parts)
            os.fchmod(fd, kept.mode)
            os.utime(fd, (kept.mtime, kept.mtime))
        self.drop_cache()


def write_tree(archive: BinaryIO, plan: ExportPlan, root_fd: int) -> Written:
    """Create the members `plan` kept below the (empty, private) directory `root_fd`.

    Raises:
        tarfile.TarError, OSError: reading `archive` or writing the tree failed.
    """
    writer = _TreeWriter(root_fd)
    files = written = 0
    try:
        with tarfile.open(fileobj=archive, mode="r|") as source:
            for index, member in enumerate(source):
                for parent in plan.implicit.get(index, ()):
                    writer.mkdir_implicit(parent)
                kept = plan.kept.get(index)
                if kept is None:
                    continue
                written += writer.create(kept, source, member)
                files += kept.kind in (FILE, HARDLINK)
        writer.finish()
    finally:
        writer.drop_cache()
    return Written(files, written)
