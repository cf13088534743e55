"""The host-crossing rule for symlinks, applied to an exported patch.

A patch is text, but applying it (`git apply`) creates what it describes,
symlinks included: a section that adds a link to `/etc/shadow`, or turns a
link into one, would plant a host path in the user's checkout as surely as
a `dir` export would. So an exported patch drops every section that creates
or retargets a symlink whose target is absolute or leaves the patched tree,
and lists it as skipped; everything else passes unchanged. (`workspace
diff` is for reading and is not filtered.)

The filter judges the patch text alone (the agent that wrote it is not
trusted): a section may make a symlink when a mode line or its `index` line
says 120000, or, with no mode at all (a modification keeps the mode the
path has in the checkout it is applied to), when it replaces one line
without a final newline by another, which is how a link's target changes.
Its targets are its added lines. Paths are read from the headers, C-quoted
or not.

Imports: models and the standard library only.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from roost.models import DiffEntry, SkippedEntry

__all__ = ["FilteredPatch", "filter_patch"]

SECTION = "diff --git "
LINK_MODE_LINES = ("new file mode 120000", "new mode 120000")
NO_NEWLINE = "\\ No newline at end of file"


@dataclass(frozen=True)
class FilteredPatch:
    """The patch text that may cross and what it left out."""

    text: str
    skipped: tuple[SkippedEntry, ...]


def _sections(text: str) -> Iterator[str]:
    start = 0
    while True:
        following = text.find("\n" + SECTION, start)
        if following < 0:
            yield text[start:]
            return
        yield text[start : following + 1]
        start = following + 1


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(quoted: str) -> tuple[str, str]:
    """A C-quoted name at the start of `quoted` (without its quotes) and the rest after it."""
    out = bytearray()
    i = 1
    while i < len(quoted) and quoted[i] != '"':
        char = quoted[i]
        if char == "\\" and i + 1 < len(quoted):
            nxt = quoted[i + 1]
            if nxt in "01234567" and i + 3 < len(quoted):
                out.append(int(quoted[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, ord(nxt)))
            i += 2
            continue
        out += char.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape"), quoted[i + 1 :]


def _path(section: str) -> str:
    header = section.split("\n", 1)[0][len(SECTION) :]
    if header.startswith('"'):
        _, rest = _unquote(header)
        second = rest.lstrip(" ")
        name = _unquote(second)[0] if second.startswith('"') else second
        return name.removeprefix("b/")
    if header.endswith('"') and ' "' in header:
        return _unquote(header[header.rindex(' "') + 1 :])[0].removeprefix("b/")
    # "a/P b/P": both halves name the same path, so the b/ half is the second half.
    half = len(header) // 2
    return header[half + 1 :].removeprefix("b/") if header.startswith("a/") else header


def _header_lines(section: str) -> list[str]:
    return section.split("\n--- ", 1)[0].split("\n@@", 1)[0].split("\nGIT binary patch", 1)[0].split("\n")


def _looks_like_retarget(section: str) -> bool:
    """One line without a final newline replaced by another: what a link's change looks like."""
    body = section.split("\n@@", 1)[1].split("\n", 1)[1] if "\n@@" in section else ""
    lines = [line for line in body.split("\n") if line]
    return (
        len([line for line in lines if line.startswith("+")]) == 1
        and len([line for line in lines if line.startswith("-")]) <= 1
        and not any(line.startswith(" ") for line in lines)
        and lines.count(NO_NEWLINE) == len([line for line in lines if line[:1] in "+-"])
    )


def _makes_link(section: str, path: str, links: set[str]) -> bool:
    """Whether applying `section` may create or rewrite a symlink (a deletion never does)."""
    header = _header_lines(section)
    if any(line.startswith("deleted file mode ") for line in header):
        return False
    if path in links or any(line in LINK_MODE_LINES for line in header):
        return True
    if any(line.startswith("index ") and line.endswith(" 120000") for line in header):
        return True
    has_mode = any(line.startswith(("new file mode ", "new mode ", "old mode ")) for line in header)
    return not has_mode and _looks_like_retarget(section)


def _escapes(path: str, target: str) -> bool:
    if not target or target.startswith("/"):
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return resolved == ".." or resolved.startswith("../")


def _added(section: str) -> list[str]:
    lines = section.split("\n")
    body = lines[next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines)) :]
    return [line[1:] for line in body if line.startswith("+") and not line.startswith("+++")]


def filter_patch(text: str, changes: Iterable[DiffEntry]) -> FilteredPatch:
    """`text` without the sections that would create a symlink pointing out of the tree."""
    changes = list(changes)
    links = {c.path for c in changes if c.kind == "symlink"}
    targets = {c.path: c.new_target for c in changes if c.new_target is not None}
    kept: list[str] = []
    skipped: list[SkippedEntry] = []
    for section in _sections(text):
        if not section.startswith(SECTION):
            kept.append(section)
            continue
        path = _path(section)
        if _makes_link(section, path, links):
            candidates = [*_added(section), *([targets[path]] if path in targets else [])]
            bad = next((t for t in candidates if _escapes(path, t)), None)
            if bad is not None:
                reason = "absolute_symlink" if bad.startswith("/") else "symlink_escapes"
                skipped.append(SkippedEntry(path, reason, f"a symlink to {bad!r}, which leads out of the tree"))
                continue
        kept.append(section)
    return FilteredPatch("".join(kept), tuple(skipped))
