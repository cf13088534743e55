"""The host-crossing rule for symlinks, applied to an exported patch.

A patch is text, but applying it (`git apply`) creates what it describes,
symlinks included: a section that adds a link to `/etc/shadow`, or turns a
link into one, would plant a host path in the user's checkout as surely as
a `dir` export would. So an exported patch drops every section that creates
or retargets a symlink whose target is absolute or leaves the patched tree,
and lists it as skipped; everything else passes unchanged. (`workspace
diff` is for reading and is not filtered.)

A section is a symlink's when its header says mode 120000 or the diff's own
summary calls the path a symlink; its targets are its added lines.

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


def _path(section: str) -> str:
    header = section.split("\n", 1)[0][len(SECTION) :]
    # "a/P b/P": both halves name the same path, so the b/ half is the second half.
    half = len(header) // 2
    return header[half + 1 :].removeprefix("b/") if header.startswith("a/") else header


def _makes_link(section: str, path: str, links: set[str]) -> bool:
    """Whether applying `section` creates or rewrites a symlink (a deletion never does)."""
    header = section.split("\n--- ", 1)[0].split("\n@@", 1)[0].split("\n")
    if any(line.startswith("deleted file mode ") for line in header):
        return False
    return path in links or any(line in LINK_MODE_LINES for line in header)


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
