"""Apply a unified diff to the workspace exactly, or not at all.

There is no fuzz and no offset search: hunks apply in order at the line
numbers they state, and every context and removed line must match. Each
file's new content is computed in memory before anything is written, so a
patch that fails anywhere changes nothing. Understands plain `diff -u`/`-ruN`
output and `git diff` output (extended headers, modes, renames, copies).

Imports: protocol, the request core, the agent's `fs` layer and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs import dirfd
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.messages import CH_RECORDS
from roost.protocol.names import NameFormError, from_text
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.transfer import PatchApplyArgs, PatchApplyResult, PatchedFileRecord
from roost.protocol.records import RecordWriter

HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
DEFAULT_NEW_MODE = 0o644
REJECT_HINT = "regenerate the diff against the current files; hunks must match exactly where they say"
GIT_HEADERS_IGNORED = ("similarity index ", "dissimilarity index ")


def _reject(message: str, hint: str = REJECT_HINT, **details: Any) -> OpError:
    return OpError(Code.PATCH_REJECTED, message, hint=hint, details=details)


@dataclass
class Hunk:
    number: int
    old_start: int
    old_count: int
    lines: list[tuple[str, str]] = field(default_factory=list)
    old_no_eol: bool = False
    new_no_eol: bool = False


@dataclass
class FilePatch:
    old: str | None  # None is /dev/null
    new: str | None
    added: bool = False
    deleted: bool = False
    renamed: bool = False
    copied: bool = False
    mode: int | None = None
    hunks: list[Hunk] = field(default_factory=list)


def _unquote(text: str) -> str:
    """A file name as a header writes it: as is, or C-quoted as git quotes unusual names."""
    try:
        return from_text(text)
    except NameFormError as exc:
        raise _reject(f"a file name in the patch is badly quoted: {exc}") from None


def _split_quoted(text: str) -> tuple[str, str]:
    """Split `text` after its leading quoted name."""
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return text[: i + 1], text[i + 1 :]


def _header_name(rest: str) -> tuple[str | None, str]:
    """The file name of a ---/+++ line and what follows it (diff's timestamp)."""
    if rest.startswith('"'):
        quoted, trailer = _split_quoted(rest)
        name = _unquote(quoted)
    else:
        name, _, trailer = rest.partition("\t")
    return (None if name == "/dev/null" else name), trailer.strip()


def _is_epoch(stamp: str) -> bool:
    # diff -N labels a missing side with the epoch, in local time.
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? ([+-]\d{4})$", stamp)
    if match is None:
        return False
    return datetime.strptime(f"{match[1]} {match[2]}", "%Y-%m-%d %H:%M:%S %z").timestamp() == 0


def _strip_prefixes(old: str | None, new: str | None) -> tuple[str | None, str | None]:
    if (old is None or old.startswith("a/")) and (new is None or new.startswith("b/")):
        return (old and old[2:]), (new and new[2:])
    return old, new


def _git_mode(value: str) -> int:
    if not value.isdigit():
        raise _reject(f"{value!r} is not a file mode")
    mode = int(value, 8)
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK or kind == 0o160000:
        raise _reject("the patch changes a symlink or submodule, which patch.apply does not support")
    return stat.S_IMODE(mode) & 0o777


def _is_binary(line: str) -> bool:
    return line.startswith("GIT binary patch") or (line.startswith("Binary files ") and line.endswith(" differ"))


class _Parser:
    """Reads the patch text into FilePatch records, checking every hunk against its header counts."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.i = 0

    def _at(self, index: int, prefix: str) -> bool:
        return index < len(self.lines) and self.lines[index].startswith(prefix)

    def parse(self) -> list[FilePatch]:
        patches: list[FilePatch] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.startswith("diff --git "):
                patches.append(self._git_section())
            elif line.startswith("--- ") and self._at(self.i + 1, "+++ "):
                patches.append(self._plain_section())
            elif line.startswith("@@ "):
                raise _reject(f"patch line {self.i + 1}: hunk without a ---/+++ file header")
            elif _is_binary(line):
                raise self._binary(line)
            else:
                self.i += 1  # commentary between files, as `diff -r` and mail tools write
        if not patches:
            raise _reject("no file changes found in the patch", hint="give unified diff text (diff -u or git diff)")
        return patches

    def _binary(self, line: str) -> OpError:
        return _reject(
            f"patch line {self.i + 1}: binary patches cannot be applied ({line})",
            hint="send binary files with file.write or archive.import",
        )

    def _names(self) -> tuple[str | None, str | None, bool, bool]:
        old, old_stamp = _header_name(self.lines[self.i][4:])
        new, new_stamp = _header_name(self.lines[self.i + 1][4:])
        self.i += 2
        return old, new, _is_epoch(old_stamp), _is_epoch(new_stamp)

    def _plain_section(self) -> FilePatch:
        old, new, old_missing, new_missing = self._names()
        old, new = _strip_prefixes(old, new)
        patch = FilePatch(old, new, added=old is None or old_missing, deleted=new is None or new_missing)
        patch.hunks = self._hunks(new or old or "?")
        return patch

    def _git_section(self) -> FilePatch:
        header = self.lines[self.i][len("diff --git ") :]
        self.i += 1
        patch = FilePatch(None, None)
        moved_from = moved_to = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            value, mode_value = line.split(" ", 2)[-1], line.rsplit(" ", 1)[-1]
            if line.startswith(("diff --git ", "--- ", "@@ ")):
                break
            if _is_binary(line):
                raise self._binary(line)
            if line.startswith("new file mode "):
                patch.added, patch.mode = True, _git_mode(mode_value)
            elif line.startswith(("deleted file mode ", "old mode ")):
                patch.deleted = patch.deleted or line.startswith("deleted")
                _git_mode(mode_value)
            elif line.startswith("new mode "):
                patch.mode = _git_mode(mode_value)
            elif line.startswith(("rename from ", "copy from ")):
                moved_from = _unquote(value)
                patch.renamed, patch.copied = line.startswith("rename"), line.startswith("copy")
            elif line.startswith(("rename to ", "copy to ")):
                moved_to = _unquote(value)
            elif line.startswith("index "):
                if len(line.split()) > 2:
                    _git_mode(line.split()[2])
            elif not line.startswith(GIT_HEADERS_IGNORED):
                break
            self.i += 1
        if self._at(self.i, "--- ") and self._at(self.i + 1, "+++ "):
            old, new, _, _ = self._names()
            patch.old, patch.new = _strip_prefixes(old, new)
            patch.hunks = self._hunks(patch.new or patch.old or "?")
        elif moved_from is not None and moved_to is not None:
            patch.old, patch.new = moved_from, moved_to
        else:
            patch.old, patch.new = self._git_line_names(header)
        patch.added = patch.added or patch.old is None
        patch.deleted = patch.deleted or patch.new is None
        return patch

    def _git_line_names(self, header: str) -> tuple[str, str]:
        # Without ---/+++ or rename lines, only `diff --git a/X b/X` names the file, and X is the same twice.
        if header.startswith('"'):
            first, rest = _split_quoted(header)
            pair = (_unquote(first), _unquote(rest.strip()))
        else:
            half = len(header) // 2
            pair = (header[:half], header[half + 1 :]) if len(header) % 2 and header[half] == " " else ("", "")
        old, new = _strip_prefixes(*pair)
        if not old or old != new:
            raise _reject(f"cannot tell which file 'diff --git {header}' names")
        return old, old

    def _hunks(self, label: str) -> list[Hunk]:
        hunks: list[Hunk] = []
        while self._at(self.i, "@@ "):
            hunks.append(self._hunk(len(hunks) + 1, label))
        if not hunks:
            raise _reject(f"{label}: file header without any hunk")
        return hunks

    def _hunk(self, number: int, label: str) -> Hunk:
        where = f"{label}: hunk {number}"
        match = HUNK_HEADER.match(self.lines[self.i])
        if match is None:
            raise _reject(f"{where}: malformed hunk header {self.lines[self.i]!r}")
        old_start, new_start = int(match[1]), int(match[3])
        old_left = 1 if match[2] is None else int(match[2])
        new_left = 1 if match[4] is None else int(match[4])
        if (old_left and not old_start) or (new_left and not new_start):
            raise _reject(f"{where}: header names line 0 for a non-empty range")
        hunk = Hunk(number, old_start, old_left)
        self.i += 1
        while old_left or new_left or self._at(self.i, "\\"):
            if self.i >= len(self.lines):
                raise _reject(f"{where}: ends {old_left} old and {new_left} new lines short of its header counts")
            line = self.lines[self.i]
            op, text = (line[:1], line[1:]) if line else (" ", "")  # editors strip the blank of empty context
            self.i += 1
            if op == "\\":
                self._mark_no_eol(hunk, where)
                continue
            takes_old, takes_new = op in " -", op in " +"
            if op not in " -+" or (takes_old and not old_left) or (takes_new and not new_left):
                raise _reject(f"{where}: line {line!r} does not fit the header counts", patch_line=self.i)
            if (takes_old and hunk.old_no_eol) or (takes_new and hunk.new_no_eol):
                raise _reject(f"{where}: lines follow a 'No newline at end of file' marker")
            old_left -= takes_old
            new_left -= takes_new
            hunk.lines.append((op, text))
        return hunk

    @staticmethod
    def _mark_no_eol(hunk: Hunk, where: str) -> None:
        if not hunk.lines:
            raise _reject(f"{where}: 'No newline at end of file' marker before any line")
        op = hunk.lines[-1][0]
        hunk.old_no_eol = hunk.old_no_eol or op in " -"
        hunk.new_no_eol = hunk.new_no_eol or op in " +"


def _apply_hunks(label: str, content: str, hunks: list[Hunk]) -> str:
    old = content.split("\n") if content else []
    old_eol = not old or old[-1] == ""
    if old and old[-1] == "":
        old.pop()
    out: list[str] = []
    pos, new_eol = 0, old_eol
    for hunk in hunks:
        where = f"{label}: hunk {hunk.number}"
        start = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        if start < pos:
            raise _reject(f"{where} starts at line {hunk.old_start}, inside or before the previous hunk")
        if start + hunk.old_count > len(old):
            raise _reject(f"{where} needs lines {start + 1}-{start + hunk.old_count}; the file has {len(old)}")
        out.extend(old[pos:start])
        index = start
        for op, text in hunk.lines:
            if op != "+":
                if old[index] != text:
                    raise _reject(
                        f"{where}: line {index + 1} does not match: the patch expects {text!r}, "
                        f"the file has {old[index]!r}",
                        path=label,
                        hunk=hunk.number,
                        line=index + 1,
                    )
                index += 1
            if op != "-":
                out.append(text)
        pos = index
        if pos == len(old):
            if old and hunk.old_no_eol == old_eol:
                state = "has" if old_eol else "lacks"
                raise _reject(f"{where}: the file {state} a newline at its end, the patch says otherwise")
            new_eol = not hunk.new_no_eol
        elif hunk.old_no_eol or hunk.new_no_eol:
            raise _reject(f"{where}: 'No newline at end of file' in a hunk that does not reach the end")
    out.extend(old[pos:])
    return "\n".join(out) + ("\n" if out and new_eol else "")


@dataclass
class _Change:
    rel: str  # where the file is, relative to the root, its directory's links resolved
    content: str | None  # None deletes the file
    mode: int


class _Plan:
    """The new state of every file the patch touches, built before anything is written."""

    def __init__(self, agent: AgentState) -> None:
        self.paths = agent.paths
        self.changes: dict[str, _Change] = {}
        self._found: dict[str, os.stat_result | None] = {}

    def locate(self, name: str) -> tuple[str, str]:
        """(guest path as the patch names it, root-relative key with the parent's links resolved)."""
        rel = self.paths.relative(name)
        if not rel:
            raise _reject(f"the patch names the workspace root {name!r} as a file")
        try:
            with self.paths.locate(name, follow_final=False) as found:
                key, st = found.rel, found.st
        except OpError as exc:
            if exc.code != Code.PATH_NOT_FOUND:
                raise
            key, st = rel, None  # its directory does not exist yet: written with its parents
        self._found.setdefault(key, st)
        return f"{GUEST_ROOT}/{rel}", key

    def exists(self, key: str) -> bool:
        change = self.changes.get(key)
        return self._found.get(key) is not None if change is None else change.content is not None

    def read(self, guest: str, key: str) -> tuple[str, int]:
        change = self.changes.get(key)
        if change is not None:
            if change.content is None:
                raise _reject(f"{guest} is deleted earlier in this patch")
            return change.content, change.mode
        st = self._found.get(key)
        if st is None:
            raise _reject(f"{guest} does not exist, so it cannot be modified or deleted")
        if not stat.S_ISREG(st.st_mode):
            raise _reject(f"{guest} is not a regular file (patching through symlinks is not supported)")
        with self.paths.locate(key, follow_final=False) as found:
            opened = dirfd.open_regular(found.dir_fd, found.name)
        if opened is None:
            raise _reject(f"{guest} changed while the patch was being read")
        fd, st = opened
        with os.fdopen(fd, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape"), stat.S_IMODE(st.st_mode)

    def put(self, key: str, content: str | None, mode: int) -> None:
        self.changes.pop(key, None)  # re-insert so writes follow the patch's order
        self.changes[key] = _Change(key, content, mode)

    def add(self, patch: FilePatch) -> list[dict[str, Any]]:
        hunks = len(patch.hunks)
        if patch.old is None and patch.new is None:
            raise _reject("a file section has /dev/null on both sides")
        if patch.added:
            guest, key = self.locate(patch.new or patch.old or "")
            if self.exists(key):
                raise _reject(f"{guest} already exists; the patch creates it")
            self.put(key, _apply_hunks(guest, "", patch.hunks), patch.mode or DEFAULT_NEW_MODE)
            return [{"path": guest, "action": "added", "hunks": hunks}]
        guest, key = self.locate(patch.old or "")
        content, mode = self.read(guest, key)
        if patch.deleted:
            if _apply_hunks(guest, content, patch.hunks):
                raise _reject(f"{guest}: the patch deletes the file but leaves some of its lines")
            self.put(key, None, mode)
            return [{"path": guest, "action": "deleted", "hunks": hunks}]
        mode = mode if patch.mode is None else patch.mode
        if patch.old == patch.new:
            self.put(key, _apply_hunks(guest, content, patch.hunks), mode)
            return [{"path": guest, "action": "modified", "hunks": hunks}]
        if not (patch.renamed or patch.copied):
            raise _reject(
                f"the old and new names differ ({patch.old} vs {patch.new})",
                hint="only git rename/copy headers may change a file's name",
            )
        new_guest, new_key = self.locate(patch.new or "")
        if self.exists(new_key):
            raise _reject(f"{new_guest} already exists; the patch renames or copies {guest} onto it")
        self.put(new_key, _apply_hunks(new_guest, content, patch.hunks), mode)
        entries = [{"path": new_guest, "action": "added", "hunks": hunks}]
        if patch.renamed:
            self.put(key, None, mode)
            entries.append({"path": guest, "action": "deleted", "hunks": 0})
        return entries


def _write(changes: list[_Change], paths: WorkspacePaths) -> None:
    """Write the plan: every new file is fully on disk under a temporary name before any target is replaced.

    Each step looks its directory up again from the root (never through a
    link out), so the number of open descriptors stays small however many
    files the patch touches.
    """
    staged: list[tuple[str, str]] = []  # (key, temp name in the key's directory)
    try:
        for change in changes:
            if change.content is None:
                continue
            with paths.locate(change.rel, follow_final=False, make_parents=True) as found:
                fd, temp = dirfd.create_temp(found.dir_fd, ".roost-patch.")
                staged.append((change.rel, temp))
                with os.fdopen(fd, "wb") as fh:
                    fh.write(change.content.encode("utf-8", "surrogateescape"))
                    os.fchmod(fh.fileno(), change.mode)
                    fh.flush()
                    os.fsync(fh.fileno())
    except BaseException:
        for key, temp in staged:
            _discard(paths, key, temp)
        raise
    for key, temp in staged:
        with paths.locate(key, follow_final=False) as found:
            dirfd.replace(found.dir_fd, temp, found.name)
    for change in changes:
        if change.content is None:
            _delete(paths, change.rel)


def _discard(paths: WorkspacePaths, key: str, temp: str) -> None:
    with contextlib.suppress(OpError, OSError), paths.locate(key, follow_final=False) as found:
        dirfd.discard(found.dir_fd, temp)


def _delete(paths: WorkspacePaths, key: str) -> None:
    """Remove the file `key`; as git does, a directory emptied by the patch goes with its last file."""
    with paths.locate(key, follow_final=False) as found:
        if found.st is None:
            return
        os.unlink(found.name, dir_fd=found.dir_fd)
    parent = posixpath.dirname(key)
    while parent:
        with paths.locate(parent, follow_final=False, follow_links=False) as found:
            try:
                os.rmdir(found.name, dir_fd=found.dir_fd)
            except OSError:
                return  # not empty (or not a directory): the walk up ends here
        parent = posixpath.dirname(parent)


def apply_patch(agent: AgentState, args: PatchApplyArgs, ctx: RequestContext) -> HandlerResult:
    """Apply the unified diff in `patch` (or the request body or upload) to the workspace.

    Each file touched is streamed as a record `{"path", "action", "hunks"}`,
    in the patch's order, once the whole patch has applied (or, with
    `dry_run`, would).

    Raises:
        OpError: patch_rejected when any hunk does not apply exactly (nothing is changed),
            path_outside_workspace, invalid_argument.
    """
    text = args.patch
    if text is None:
        text = b"".join(ctx.upload()).decode("utf-8", "surrogateescape")
    dry_run = args.dry_run
    plan = _Plan(agent)
    files: list[dict[str, Any]] = []
    for patch in _Parser(text).parse():
        files.extend(plan.add(patch))
    if not dry_run:
        _write(list(plan.changes.values()), agent.paths)
    records = RecordWriter(ctx.send, CH_RECORDS)
    for touched in files:
        records.add(PatchedFileRecord(**touched).to_wire())
    records.flush()
    return HandlerResult(PatchApplyResult(count=len(files), dry_run=dry_run))


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.PATCH_APPLY: apply_patch,
}
