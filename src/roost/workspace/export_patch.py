"""The host-crossing rule for symlinks, applied to an exported patch as it streams past.

A patch is text, but applying it (`git apply`) creates what it describes,
symlinks included: a section that adds a link to `/etc/shadow`, or turns a
link into one, would plant a host path in the user's checkout as surely as
a `dir` export would. So an exported patch drops every section that creates
or retargets a symlink whose target is absolute or leaves the patched tree,
and lists it as skipped; everything else passes unchanged. (`workspace
diff` is for reading and is not filtered.)

The patch text alone decides (the agent that wrote it is not trusted; its
entries can only add suspicion): a section may make a symlink when a mode
line or its `index` line says 120000, when the entry before it calls the
path a symlink, or, with no mode at all (a modification keeps the mode the
path has in the checkout it is applied to), when it replaces one line
without a final newline by another, which is how a link's target changes.
Its targets are its added lines and the entry's `new_target`. Section paths
are read in git's quoted form (`roost.protocol.names`).

The diff arrives as each change's entry followed by its patch text, in any
number of pieces. `PatchFilter` takes them in that order and writes what
may cross as it goes: a section passes line by line once its header shows
it makes no link; a section that makes one is held until it ends (a link's
section is a few lines; one past `MAX_LINK_SECTION` bytes is no honest
link and is dropped). A mode-less section is held only while its body
still looks like a retarget: a context line, a second added or removed
line, or more than `MAX_LINK_SECTION` bytes (no link target is that long)
releases it.

Imports: models, protocol.names and the standard library only.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from roost.models import DiffEntry, SkippedEntry
from roost.protocol.names import NameFormError, from_text

__all__ = ["MAX_LINK_SECTION", "PatchFilter"]

SECTION = "diff --git "
LINK_MODE_LINES = ("new file mode 120000\n", "new mode 120000\n")
MODE_LINES = ("new file mode ", "new mode ", "old mode ")
NO_NEWLINE = "\\ No newline at end of file"
BINARY = ("GIT binary patch", "Binary files ")
HEAD_ENDS = ("--- ", "+++ ", "@@", *BINARY)
MAX_LINK_SECTION = 64 * 1024
MAX_HEAD_LINES = 64
MAX_LISTED = 1000


def _split_quoted(text: str) -> tuple[str, str]:
    """`text` cut after its leading C-quoted name."""
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return text[: i + 1], text[i + 1 :]


def section_path(header: str) -> str:
    """The path a `diff --git a/P b/P` line names (its b/ side), as a native name."""
    rest = header[len(SECTION) :].rstrip("\n")
    if rest.startswith('"'):
        _, rest = _split_quoted(rest)
        second = rest.strip()
    else:
        # "a/P b/P": both halves name the same path, so the b/ half is the second half.
        second = rest[len(rest) // 2 + 1 :] if rest.startswith("a/") else rest
    try:
        name = from_text(second)
    except NameFormError:
        name = second
    return name.removeprefix("b/")


def _discard(text: str) -> None:
    pass


def _escapes(path: str, target: str) -> bool:
    if not target or target.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return resolved == ".." or resolved.startswith("../")


def _says_link(head: list[str]) -> bool:
    """Whether a section's head names mode 120000 (a mode line, or git's `index A..B 120000`)."""
    return any(
        line in LINK_MODE_LINES or (line.startswith("index ") and line.rstrip("\n").endswith(" 120000"))
        for line in head
    )


class _RetargetShape:
    """The body of a mode-less section, watched while it still looks like a link's retarget:
    after its first hunk header, one added line, at most one removed, each without a final
    newline, and nothing else."""

    def __init__(self) -> None:
        self.in_hunk = False
        self.added = 0
        self.removed = 0
        self.no_newline = 0

    def still(self, line: str) -> bool:
        """Take the next line; whether the section may still be a retarget."""
        if not self.in_hunk:
            self.in_hunk = line.startswith("@@")
            return not line.startswith(BINARY)
        if line.startswith("+"):
            self.added += 1
        elif line.startswith("-"):
            self.removed += 1
        elif line.rstrip("\n") == NO_NEWLINE:
            self.no_newline += 1
        elif line.startswith(" "):
            return False
        return self.added <= 1 and self.removed <= 1 and self.no_newline <= 2

    def complete(self) -> bool:
        """At the section's end: whether it is a retarget."""
        return self.added == 1 and self.no_newline == self.added + self.removed


class PatchFilter:
    """Writes a streamed patch through `write`, without the sections that would make a link out of the tree."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._entry: DiffEntry | None = None
        self._partial = ""  # the start of a line whose end has not arrived
        self._line_start = True
        self._state = "pass"  # pass | head | hold | maybe | drop
        self._shape = _RetargetShape()  # state maybe: whether the held section still looks like a retarget
        self._lines: list[str] = []  # the section's head (state head) or all of it (states hold and maybe)
        self._held = 0
        self._path = ""
        self.skipped: list[SkippedEntry] = []
        self.skipped_count = 0
        self.entries = 0

    def note(self, entry: DiffEntry) -> None:
        """The change whose patch text comes next."""
        self._entry = entry
        self.entries += 1

    def feed(self, text: str) -> None:
        """More patch text, cut anywhere. Text that passes is written in runs, not line by line."""
        if self._partial:
            text, self._partial = self._partial + text, ""
        pos = 0
        while pos < len(text):
            if self._state in ("pass", "drop") and not (self._line_start and text.startswith(SECTION, pos)):
                pos = self._run(text, pos)
                continue
            end = text.find("\n", pos)
            if end < 0:
                self._partial = text[pos:]
                if len(self._partial) > MAX_LINK_SECTION:
                    self._overlong()
                return
            self._line(text[pos : end + 1])
            self._line_start = True
            pos = end + 1

    def _run(self, text: str, pos: int) -> int:
        """Pass (or drop) text from `pos` up to the next section's first line; return where that starts."""
        emit = self._write if self._state == "pass" else _discard
        following = text.find("\n" + SECTION, pos)
        if following >= 0:
            emit(text[pos : following + 1])
            self._line_start = True
            return following + 1
        last = text.rfind("\n", pos)
        tail = text[last + 1 :] if last >= 0 else text[pos:]
        if (last >= 0 or self._line_start) and tail and SECTION.startswith(tail):
            emit(text[pos : len(text) - len(tail)])  # the tail may yet become a section's first line
            self._partial, self._line_start = tail, True
            return len(text)
        emit(text[pos:])
        self._line_start = not tail
        return len(text)

    def _overlong(self) -> None:
        """A line in a head or a held section has grown past any honest size: stop holding it."""
        line, self._partial = self._partial, ""
        if self._state == "head":
            self._decide()
        if self._state == "maybe":
            self._release()
        if self._state == "hold":
            self._skip("symlink_escapes", "a symlink whose patch is too large to be one")
            self._state, self._lines = "drop", []
        elif self._state == "pass":
            self._write(line)
        self._line_start = False

    def finish(self) -> None:
        """The patch is complete: judge and write what is still held."""
        if self._partial:
            if self._state in ("pass", "drop"):
                if self._state == "pass":
                    self._write(self._partial)
            else:
                self._line(self._partial)
            self._partial = ""
        self._end_section()

    def _line(self, line: str) -> None:
        if line.startswith(SECTION):
            self._end_section()
            self._path = section_path(line)
            self._state, self._lines, self._held = "head", [line], len(line)
        elif self._state == "head":
            self._lines.append(line)
            if line.startswith(HEAD_ENDS) or len(self._lines) > MAX_HEAD_LINES:
                self._decide()
        elif self._state == "hold":
            self._lines.append(line)
            self._held += len(line)
            if self._held > MAX_LINK_SECTION:
                self._skip("symlink_escapes", "a symlink whose patch is too large to be one")
                self._state, self._lines = "drop", []
        elif self._state == "maybe":
            self._lines.append(line)
            self._held += len(line)
            if not self._shape.still(line) or self._held > MAX_LINK_SECTION:
                self._release()
        elif self._state == "pass":
            self._write(line)

    def _entry_for(self, path: str) -> DiffEntry | None:
        return self._entry if self._entry is not None and self._entry.path == path else None

    def _decide(self) -> None:
        """The head is complete: pass the section on, or hold it to judge the link it makes."""
        head = self._lines
        entry = self._entry_for(self._path)
        if any(line.startswith("deleted file mode ") for line in head):
            self._release()
        elif (entry is not None and entry.kind == "symlink") or _says_link(head):
            self._state = "hold"
        elif not any(line.startswith(MODE_LINES) for line in head):
            self._state, self._shape = "maybe", _RetargetShape()
            for line in head[1:]:  # a head cut short (MAX_HEAD_LINES) may already hold its body
                if not self._shape.still(line):
                    self._release()
                    return
        else:
            self._release()

    def _release(self) -> None:
        """What is held makes no link: write it, and pass the rest of the section."""
        for line in self._lines:
            self._write(line)
        self._state, self._lines = "pass", []

    def _end_section(self) -> None:
        if self._state == "head":
            self._decide()
        if self._state == "maybe":
            if self._shape.complete():
                self._judge()
            else:
                self._release()
        if self._state == "hold":
            self._judge()
        self._state, self._lines = "pass", []

    def _judge(self) -> None:
        section = self._lines
        first_hunk = next((i for i, line in enumerate(section) if line.startswith("@@")), len(section))
        added = [line[1:].rstrip("\n") for line in section[first_hunk:] if line.startswith("+")]
        entry = self._entry_for(self._path)
        candidates = [*added, *([entry.new_target] if entry is not None and entry.new_target is not None else [])]
        bad = next((target for target in candidates if _escapes(self._path, target)), None)
        if bad is None:
            for line in section:
                self._write(line)
            return
        reason = "absolute_symlink" if bad.startswith("/") else "symlink_escapes"
        self._skip(reason, f"a symlink to {bad!r}, which leads out of the tree")

    def _skip(self, reason: str, detail: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED:
            self.skipped.append(SkippedEntry(self._path, reason, detail))
