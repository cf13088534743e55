"""Rendering tree changes as a git-style patch that `git apply` and `patch -p1` accept.

Text files get unified hunks (3 lines of context, `\\ No newline at end of
file` where due); symlinks are diffed as their target text with mode
120000, as git does; binary files get a `GIT binary patch` literal with the
full blob ids git apply needs; a type change is a deletion plus an addition.
A path holding a control character, a quote, a backslash, a byte that is
not UTF-8 or a character that reorders text is C-quoted in the headers, as
git does (`roost.protocol.names`, the form every name takes as text), so
printing a patch can never drive a terminal and `git apply` gets the bytes.

Imports: protocol.names, this package's trees and the standard library only.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import zlib
from collections.abc import Callable, Iterator

from roost.agent.snapshots.trees import FILE, SYMLINK, Entry, is_binary
from roost.protocol.names import to_text as quoted

NULL_ID = "0" * 40
Loader = Callable[[Entry], bytes]


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _mode(entry: Entry) -> str:
    if entry.kind == SYMLINK:
        return "120000"
    return "100755" if entry.mode & 0o111 else "100644"


def _range(start: int, length: int) -> str:
    first = start + 1
    if length == 1:
        return str(first)
    if length == 0:
        first -= 1
    return f"{first},{length}"


def _lines(data: bytes) -> list[str]:
    """Lines as git and patch see them, ended by LF only: str.splitlines also splits at
    CR, form feed and other separators, and hunks cut there do not apply."""
    pieces = data.decode("utf-8").split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _hunks(old: bytes, new: bytes) -> Iterator[str]:
    a = _lines(old)
    b = _lines(new)
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2] - first[1])} +{_range(first[3], last[4] - first[3])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            lines = [(" ", line) for line in a[i1:i2]] if tag == "equal" else []
            if tag in ("replace", "delete"):
                lines += [("-", line) for line in a[i1:i2]]
            if tag in ("replace", "insert"):
                lines += [("+", line) for line in b[j1:j2]]
            for sign, line in lines:
                yield sign + line if line.endswith("\n") else f"{sign}{line}\n\\ No newline at end of file\n"


def _binary_literal(data: bytes) -> Iterator[str]:
    packed = zlib.compress(data)
    yield f"literal {len(data)}\n"
    for start in range(0, len(packed), 52):
        chunk = packed[start : start + 52]
        size_char = chr(ord("A") + len(chunk) - 1) if len(chunk) <= 26 else chr(ord("a") + len(chunk) - 27)
        yield size_char + base64.b85encode(chunk, pad=True).decode() + "\n"
    yield "\n"


def _one_side(path: str, old: Entry | None, new: Entry | None, load: Loader) -> Iterator[str]:
    """One `diff --git` block for an added, deleted or modified path of a single kind."""
    before = load(old) if old is not None else b""
    after = load(new) if new is not None else b""
    yield f"diff --git {quoted('a/' + path)} {quoted('b/' + path)}\n"
    if old is None and new is not None:
        yield f"new file mode {_mode(new)}\n"
    elif new is None and old is not None:
        yield f"deleted file mode {_mode(old)}\n"
    elif old is not None and new is not None and _mode(old) != _mode(new):
        yield f"old mode {_mode(old)}\nnew mode {_mode(new)}\n"
    if before == after:
        return  # a mode-only change has no content part
    if old is not None and new is not None and _mode(old) == _mode(new) == "120000":
        # As git writes it: whoever applies or reads this knows it retargets a link.
        yield f"index {git_blob_id(before)[:7]}..{git_blob_id(after)[:7]} 120000\n"
    if is_binary(before) or is_binary(after):
        old_id = git_blob_id(before) if old is not None else NULL_ID
        new_id = git_blob_id(after) if new is not None else NULL_ID
        yield f"index {old_id}..{new_id}\n"
        yield "GIT binary patch\n"
        yield from _binary_literal(after)
        return
    yield f"--- {quoted('a/' + path) if old is not None else '/dev/null'}\n"
    yield f"+++ {quoted('b/' + path) if new is not None else '/dev/null'}\n"
    yield from _hunks(before, after)


def patch_for(path: str, change: str, old: Entry | None, new: Entry | None, load: Loader) -> Iterator[str]:
    """The patch text of one change (directories and special files have none)."""
    diffable = (FILE, SYMLINK)
    if change == "type_changed":
        if old is not None and old.kind in diffable:
            yield from _one_side(path, old, None, load)
        if new is not None and new.kind in diffable:
            yield from _one_side(path, None, new, load)
        return
    if (old is None or old.kind in diffable) and (new is None or new.kind in diffable):
        yield from _one_side(path, old, new, load)


def binary_change(old: Entry | None, new: Entry | None, load: Loader) -> bool:
    """Whether either side is a binary file; from what the scan saw when it read the file, else by loading it."""
    return any(
        e is not None and e.kind == FILE and (e.binary if e.binary is not None else is_binary(load(e)))
        for e in (old, new)
    )
