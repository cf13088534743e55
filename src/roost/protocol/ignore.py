"""gitignore patterns as git reads them, and git's precedence between them.

`parse_lines` reads an ignore file (a BOM, CRLF, comments, escaped trailing
spaces, `!` negation, a trailing `/` for directories only) and
`parse_pattern` one pattern; each becomes an exact regex for one entry
(git's wildmatch with FNM_PATHNAME: `*`, `?`, `[...]` with ranges and
`[:classes:]`, `**/`, `/**/`, `/**`, `\\` escapes), matched against the
entry's name when the pattern has no slash, else against its path below
the directory the pattern came from. `RuleChain` holds the patterns that
apply inside one directory, lowest precedence first, and answers with
git's rule: the last pattern that matches decides. Paths and patterns are
bytes, as they are to git.

What this module does not do is walk: a directory a chain excludes is
pruned by the caller, and nothing below it can come back (git's rule too).

`IgnoreSpec` is what travels in a diff or export request: the patterns the
caller gave (`--exclude`), whether to read `.gitignore` files and
`.git/info/exclude`, and whether `.git` itself stays in.

No I/O; standard library only: the host checks patterns with it and the
guest agent applies them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["IgnorePattern", "IgnoreSpec", "RuleChain", "parse_lines", "parse_pattern"]

_STAR, _QUESTION, _OPEN, _CLOSE, _BACKSLASH, _SLASH = b"*?[]\\/"
_BANG, _CARET, _DASH, _COLON, _SPACE = b"!^-: "
_GLOB_SPECIAL = frozenset(b"*?[\\")
_BOM = b"\xef\xbb\xbf"

# wildmatch's [:class:] names, with git's ASCII-only ctype (its isspace leaves out \v and \f).
_DIGITS = set(range(0x30, 0x3A))
_UPPER = set(range(0x41, 0x5B))
_LOWER = set(range(0x61, 0x7B))
_GRAPH = set(range(0x21, 0x7F))
_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": frozenset(_DIGITS | _UPPER | _LOWER),
    b"alpha": frozenset(_UPPER | _LOWER),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset([*range(0x20), 0x7F]),
    b"digit": frozenset(_DIGITS),
    b"graph": frozenset(_GRAPH),
    b"lower": frozenset(_LOWER),
    b"print": frozenset(_GRAPH | {0x20}),
    b"punct": frozenset(_GRAPH - _DIGITS - _UPPER - _LOWER),
    b"space": frozenset(b" \t\n\r"),
    b"upper": frozenset(_UPPER),
    b"xdigit": frozenset(_DIGITS | set(b"abcdefABCDEF")),
}


@dataclass(frozen=True)
class IgnorePattern:
    """One pattern, compiled: `regex` is None for one git would never match (a malformed `[`, say)."""

    source: bytes
    regex: bytes | None
    negated: bool
    dir_only: bool
    by_name: bool  # no slash in it: matched against an entry's name at any depth


def _trim_trailing_spaces(line: bytes) -> bytes:
    """Drop unescaped trailing spaces (git's trim_trailing_spaces: a backslash keeps the byte after it)."""
    last_space = None
    i = 0
    while i < len(line):
        byte = line[i]
        if byte == _SPACE:
            if last_space is None:
                last_space = i
        else:
            if byte == _BACKSLASH:
                i += 1
                if i == len(line):
                    return line
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def _byte_class(members: Iterable[int]) -> bytes:
    """A regex character class of exactly these byte values (never matching when there are none)."""
    values = sorted(set(members))
    if not values:
        return b"(?!)"
    parts = []
    start = previous = values[0]
    for value in [*values[1:], -1]:
        if value == previous + 1:
            previous = value
            continue
        parts.append(b"\\x%02x" % start if start == previous else b"\\x%02x-\\x%02x" % (start, previous))
        start = previous = value
    return b"[" + b"".join(parts) + b"]"


def _bracket(pattern: bytes, i: int) -> tuple[set[int], int] | None:
    """The bytes `[...]` matches, starting just after its `[`, and the index after its `]`; None: malformed.

    Follows wildmatch's loop exactly: a `]` right after the opening (or after
    `!`/`^`) is a member, `-` is literal first or last, a range or a class
    resets what a following `-` ranges from, and an unknown `[:name:]` or a
    missing `]` makes the whole pattern match nothing.
    """
    end = len(pattern)
    negated = i < end and pattern[i] in (_BANG, _CARET)
    if negated:
        i += 1
    members: set[int] = set()
    previous = 0
    while True:
        if i >= end:
            return None
        byte = pattern[i]
        if byte == _BACKSLASH:
            i += 1
            if i >= end:
                return None
            byte = pattern[i]
            members.add(byte)
        elif byte == _DASH and previous and i + 1 < end and pattern[i + 1] != _CLOSE:
            i += 1
            high = pattern[i]
            if high == _BACKSLASH:
                i += 1
                if i >= end:
                    return None
                high = pattern[i]
            members.update(range(previous, high + 1))
            byte = 0
        elif byte == _OPEN and i + 1 < end and pattern[i + 1] == _COLON:
            close = pattern.find(b"]", i + 2)
            if close < 0:
                return None
            name = pattern[i + 2 : close]
            if not name.endswith(b":"):
                members.add(_OPEN)  # no ":]": a plain "[" member, and the scan goes on after it
            else:
                if name[:-1] not in _CLASSES:
                    return None
                members.update(_CLASSES[name[:-1]])
                i = close
                byte = 0
        else:
            members.add(byte)
        previous = byte
        i += 1
        if i < end and pattern[i] == _CLOSE:
            break
    if negated:
        members = set(range(256)) - members
    return members, i + 1


def _wildmatch(pattern: bytes, pathname: bool) -> bytes | None:
    """The regex for wildmatch(`pattern`) over a whole string; None if it can never match.

    With `pathname` (FNM_PATHNAME) `*`, `?` and `[...]` stop at `/`, and a
    `**` that fills a whole component crosses directories: `**/` matches
    zero or more of them, a trailing `/**` everything below.
    """
    out: list[bytes] = []
    i, end = 0, len(pattern)
    while i < end:
        byte = pattern[i]
        if byte == _STAR:
            run_end = i
            while run_end < end and pattern[run_end] == _STAR:
                run_end += 1
            whole = (i == 0 or pattern[i - 1] == _SLASH) and (
                run_end == end or pattern[run_end] == _SLASH or pattern[run_end : run_end + 2] == b"\\/"
            )
            if not pathname:
                out.append(b".*")
            elif run_end - i >= 2 and whole:
                if run_end < end and pattern[run_end] == _SLASH:
                    out.append(b"(?:.*/)?")  # "**/": no directory at all, or any number of them
                    run_end += 1
                else:
                    out.append(b".*")
            else:
                out.append(b"[^/]*")
            i = run_end
        elif byte == _QUESTION:
            out.append(b"[^/]" if pathname else b".")
            i += 1
        elif byte == _OPEN:
            parsed = _bracket(pattern, i + 1)
            if parsed is None:
                return None
            members, i = parsed
            out.append(_byte_class(members - {_SLASH} if pathname else members))
        elif byte == _BACKSLASH:
            if i + 1 == end:
                return None  # a lone trailing backslash escapes nothing: git never matches it
            out.append(re.escape(pattern[i + 1 : i + 2]))
            i += 2
        else:
            out.append(re.escape(pattern[i : i + 1]))
            i += 1
    return b"".join(out)


def parse_pattern(line: bytes, base: bytes = b"") -> IgnorePattern | None:
    """One ignore-file line as a pattern of the directory `base` (b"" or b"dir/sub/"); None for a comment.

    `line` is taken as git reads a line: a leading `#` makes it a comment,
    unescaped trailing spaces go, `!` negates, one trailing `/` means
    directories only, a slash anywhere else anchors it to `base`.
    """
    if not line or line.startswith(b"#"):
        return None
    source = line
    line = _trim_trailing_spaces(line)
    negated = line.startswith(b"!")
    if negated:
        line = line[1:]
    dir_only = line.endswith(b"/")
    if dir_only:
        line = line[:-1]
    by_name = b"/" not in line
    if by_name:
        regex = _wildmatch(line, pathname=False)
    else:
        line = line.removeprefix(b"/")
        # git compares the part before the first wildcard literally and wildmatches the rest on its own,
        # so a "**" that starts that rest counts as a whole component (e.g. "foo**/bar").
        literal = next((i for i, byte in enumerate(line) if byte in _GLOB_SPECIAL), len(line))
        rest = _wildmatch(line[literal:], pathname=True)
        regex = None if rest is None else re.escape(base + line[:literal]) + rest
    return IgnorePattern(source, regex, negated, dir_only, by_name)


def parse_lines(data: bytes, base: bytes = b"") -> list[IgnorePattern]:
    """Every pattern of an ignore file's content, in order (git skips a UTF-8 BOM and a CR before LF)."""
    patterns = []
    for line in data.removeprefix(_BOM).split(b"\n"):
        pattern = parse_pattern(line.removesuffix(b"\r"), base)
        if pattern is not None:
            patterns.append(pattern)
    return patterns


class _Alternatives:
    """Several patterns as one regex: the first alternative to match is the highest-precedence pattern."""

    __slots__ = ("owners", "regex")

    def __init__(self, ranked: Sequence[tuple[int, bytes]]) -> None:
        # Each alternative is the only capturing group in its branch, so `lastindex` names the pattern.
        self.owners = tuple(index for index, _ in ranked)
        self.regex = re.compile(b"|".join(b"(" + regex + b")" for _, regex in ranked), re.DOTALL)

    def best(self, subject: bytes) -> int:
        found = self.regex.fullmatch(subject)
        return -1 if found is None or found.lastindex is None else self.owners[found.lastindex - 1]


class RuleChain:
    """The patterns in force inside one directory, lowest precedence first: the last one to match decides."""

    __slots__ = ("_by_kind", "patterns")

    def __init__(self, patterns: Sequence[IgnorePattern]) -> None:
        self.patterns = tuple(patterns)
        ranked = sorted(((i, p) for i, p in enumerate(self.patterns) if p.regex is not None), reverse=True)
        by_kind: dict[bool, tuple[_Alternatives | None, _Alternatives | None]] = {}
        for is_dir in (False, True):
            usable = [(i, p) for i, p in ranked if is_dir or not p.dir_only]
            names = [(i, p.regex) for i, p in usable if p.by_name and p.regex is not None]
            paths = [(i, p.regex) for i, p in usable if not p.by_name and p.regex is not None]
            by_kind[is_dir] = (_Alternatives(names) if names else None, _Alternatives(paths) if paths else None)
        self._by_kind = by_kind

    def decide(self, path: bytes, name: bytes, is_dir: bool) -> bool | None:
        """True: excluded; False: a negated pattern took it back; None: no pattern matches `path`."""
        names, paths = self._by_kind[is_dir]
        best = -1 if names is None else names.best(name)
        if paths is not None:
            best = max(best, paths.best(path))
        return None if best < 0 else not self.patterns[best].negated


@dataclass(frozen=True)
class IgnoreSpec:
    """The rules a diff or export request asks for; `active` when they may leave anything out."""

    exclude: tuple[str, ...] = ()
    gitignore: bool = False
    include_git_dir: bool = True

    @property
    def active(self) -> bool:
        return bool(self.exclude) or self.gitignore or not self.include_git_dir
