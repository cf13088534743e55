"""Which workspace paths a diff or export leaves out: `--exclude` patterns, ignore files, `.git`.

An `IgnoreFilter` is a `dirtree.Pruner`: as a walk enters a directory it
reads that directory's `.gitignore` (and, where the directory holds a
`.git` directory, its `info/exclude`, one step below the `.gitignore` in
precedence), and it judges every entry by the rules of the directories
above it, the way git does. A directory it excludes is never opened, so
nothing below it is listed, hashed or brought back by a later `!` pattern.
The caller's `--exclude` patterns rank above every file's; an entry named
`.git` goes first of all unless the request keeps it.

Ignore files are read through directory fds with O_NOFOLLOW, like every
other agent file access: a `.gitignore` that is a symlink is not read
(git refuses those too).

Imports: protocol, the agent's file-system layer (`roost.agent.fs`) and the standard library only.
"""

from __future__ import annotations

import os
import stat

from roost.agent.fs.dirtree import DIR_READ_FLAGS, Pruner
from roost.protocol import Code, OpError
from roost.protocol.ignore import IgnorePattern, IgnoreSpec, RuleChain, parse_lines, parse_pattern
from roost.protocol.limits import MAX_IGNORE_FILE_BYTES

GIT_DIR = ".git"
IGNORE_FILE = ".gitignore"
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_below(dir_fd: int, parts: tuple[str, ...], shown: str) -> bytes | None:
    """The regular file at `parts` under `dir_fd`, no link followed; None when there is none.

    Raises:
        OpError: invalid_argument for a file above MAX_IGNORE_FILE_BYTES.
    """
    opened: list[int] = []
    try:
        at = dir_fd
        for name in parts[:-1]:
            at = os.open(name, DIR_READ_FLAGS, dir_fd=at)
            opened.append(at)
        fd = os.open(parts[-1], READ_FLAGS, dir_fd=at)
        opened.append(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > MAX_IGNORE_FILE_BYTES:
            raise OpError(
                Code.INVALID_ARGUMENT,
                f"{shown} is {st.st_size} bytes; ignore files are read up to {MAX_IGNORE_FILE_BYTES}",
                hint="shorten that file, or stop reading .gitignore files and name what to skip as exclude patterns",
            )
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None  # absent, a link (ELOOP), not a directory on the way, unreadable: git reads nothing either
    finally:
        for fd in reversed(opened):
            os.close(fd)


class IgnoreFilter:
    """The rules of one request, learnt directory by directory as walks enter them.

    Directories are keyed by their workspace path plus "/" ("" is /workspace).
    """

    def __init__(self, spec: IgnoreSpec) -> None:
        self.spec = spec
        patterns = (parse_pattern(os.fsencode(p)) for p in spec.exclude)
        self._given = tuple(p for p in patterns if p is not None)
        self._given_only = RuleChain(self._given) if self._given else None  # for paths above any entered directory
        self._from_files: dict[str, tuple[IgnorePattern, ...]] = {}
        self._chains: dict[str, RuleChain | None] = {}
        self._dirs: dict[str, bool] = {}  # judged directories (path, no "/") -> excluded

    # -- Pruner ------------------------------------------------------------------
    def enter(self, prefix: str, dir_fd: int) -> None:
        if prefix in self._chains:
            return
        parent = _parent_prefix(prefix) if prefix else None
        inherited = () if parent is None else self._from_files.get(parent, ())
        own = self._read_rules(prefix, dir_fd) if self.spec.gitignore else ()
        rules = inherited + own
        self._from_files[prefix] = rules
        if parent is not None and not own and parent in self._chains:
            self._chains[prefix] = self._chains[parent]  # nothing new here: share the parent's compiled chain
        else:
            every = rules + self._given
            self._chains[prefix] = RuleChain(every) if every else None
        if prefix:
            self._dirs[prefix[:-1]] = False

    def excluded(self, prefix: str, name: str, is_dir: bool) -> bool:
        if name == GIT_DIR and not self.spec.include_git_dir:
            left_out = True
        else:
            chain = self._chain(prefix)
            left_out = chain is not None and chain.decide(os.fsencode(prefix + name), os.fsencode(name), is_dir) is True
        if is_dir:
            self._dirs[prefix + name] = left_out
        return left_out

    # -- paths a walk did not visit ------------------------------------------------
    def excluded_path(self, rel: str, is_dir: bool) -> bool:
        """Whether `rel` is left out, judged with the rules known so far (a snapshot's paths, after a scan).

        A directory the walks never entered (gone since) is judged by the
        nearest one they did; anything below an excluded directory is excluded.
        """
        parent, _, name = rel.rpartition("/")
        if parent and self._dir_excluded(parent):
            return True
        return self.excluded(parent + "/" if parent else "", name, is_dir)

    def _dir_excluded(self, rel: str) -> bool:
        pending = []
        while rel and rel not in self._dirs:
            pending.append(rel)
            rel = rel.rpartition("/")[0]
        if rel and self._dirs[rel]:
            return True
        for path in reversed(pending):  # outermost first: below an excluded directory, all is excluded
            parent, _, name = path.rpartition("/")
            if self.excluded(parent + "/" if parent else "", name, True):
                for below in pending[: pending.index(path)]:
                    self._dirs[below] = True
                return True
        return False

    def descend(self, root_fd: int, rel: str, is_dir: bool) -> bool:
        """Enter each directory from the top down to `rel` (learning their rules); whether `rel` is excluded.

        `rel` is a workspace path ("" for /workspace) whose entry is a
        directory when `is_dir`. A directory on the way that cannot be
        opened any more ends the descent: what lies below is judged by the
        rules read so far.
        """
        self.enter("", root_fd)
        parts = rel.split("/") if rel else []
        opened: list[int] = []
        try:
            at, prefix = root_fd, ""
            for depth, name in enumerate(parts):
                last = depth == len(parts) - 1
                if self.excluded(prefix, name, is_dir or not last):
                    return True
                if last:
                    break
                try:
                    at = os.open(name, DIR_READ_FLAGS, dir_fd=at)
                except OSError:
                    break
                opened.append(at)
                prefix += name + "/"
                self.enter(prefix, at)
        finally:
            for fd in reversed(opened):
                os.close(fd)
        return False

    def below(self, rel: str) -> Pruner:
        """This filter for a walk whose top is the workspace directory `rel`."""
        return _Below(self, rel + "/" if rel else "")

    # -- internals -----------------------------------------------------------------
    def _chain(self, prefix: str) -> RuleChain | None:
        while prefix not in self._chains:
            if not prefix:
                return self._given_only
            prefix = _parent_prefix(prefix)
        return self._chains[prefix]

    def _read_rules(self, prefix: str, dir_fd: int) -> tuple[IgnorePattern, ...]:
        base = os.fsencode(prefix)
        rules: list[IgnorePattern] = []
        for parts in ((GIT_DIR, "info", "exclude"), (IGNORE_FILE,)):
            data = _read_below(dir_fd, parts, "/workspace/" + prefix + "/".join(parts))
            if data is not None:
                rules.extend(parse_lines(data, base))
        return tuple(rules)


class _Below:
    """An `IgnoreFilter` seen from a subdirectory: prefixes are relative to it."""

    def __init__(self, whole: IgnoreFilter, top: str) -> None:
        self._whole = whole
        self._top = top

    def enter(self, prefix: str, dir_fd: int) -> None:
        self._whole.enter(self._top + prefix, dir_fd)

    def excluded(self, prefix: str, name: str, is_dir: bool) -> bool:
        return self._whole.excluded(self._top + prefix, name, is_dir)


def _parent_prefix(prefix: str) -> str:
    """ "a/b/" -> "a/", "a/" -> "" """
    head = prefix[:-1].rpartition("/")[0]
    return head + "/" if head else ""


def ignore_filter(spec: IgnoreSpec) -> IgnoreFilter | None:
    """The filter a request's rules ask for; None when it would leave nothing out."""
    return IgnoreFilter(spec) if spec.active else None
