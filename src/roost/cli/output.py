"""How the CLI speaks: one JSON document with --json, readable text otherwise,
errors on stderr with a stable code and a hint (naming the CLI's option where
one is the way out, and a remedy as the command line that carries it out),
and exit codes by error kind.

Human output never lets a string from a workspace or a user drive the
terminal: `shown` escapes control characters (a file named `\x1b[2J` must
not clear the screen) and every renderer passes such strings through it;
`table` and `StreamedTable` do it for every cell. JSON output stays exact
(names in it are in their quoted text form, which `to_dict` gives them).

Results of any size are printed as they arrive: `StreamedTable` rows with
fixed column widths, and `JsonStream` for one JSON document whose arrays
and long strings are written piece by piece.

Imports: errors, models and the standard library only.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from roost.errors import (
    AgentError,
    BackendError,
    ConflictError,
    ImageError,
    InvalidArgument,
    NotFound,
    RoostError,
    StorageError,
)
from roost.models import WorkspaceInfo

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_BACKEND = 5
EXIT_IMAGE = 6
EXIT_TIMEOUT = 124
EXIT_COMMAND_NOT_FOUND = 127
EXIT_INTERRUPTED = 130

_BY_CODE = {"command_not_found": EXIT_COMMAND_NOT_FOUND, "exec_timeout": EXIT_TIMEOUT}
# Ways out that are a CLI option: the CLI names the option (hints from the layers below name no face's spelling).
_HINTS_BY_CODE = {
    "name_taken": "pick another --name (--name-prefix for a fork), or delete the workspace that has it",
    "directory_not_empty": "pass --recursive to delete it with its contents",
    "home_unusable": "point ROOST_HOME (or --home) at a directory you own",
}
_BY_CLASS: tuple[tuple[type[RoostError], int], ...] = (
    (InvalidArgument, EXIT_USAGE),
    (NotFound, EXIT_NOT_FOUND),
    (ConflictError, EXIT_CONFLICT),
    (BackendError, EXIT_BACKEND),
    (AgentError, EXIT_BACKEND),
    (StorageError, EXIT_BACKEND),
    (ImageError, EXIT_IMAGE),
)


# C0 controls and DEL, C1 controls, lone surrogates (undecodable bytes of a file name),
# line and paragraph separators, and the bidirectional overrides and isolates that
# can make text read differently from what it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# The same, but line feeds and tabs pass: for messages that are several lines on purpose.
_UNSAFE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte that was not UTF-8, as surrogateescape carries it
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: object, *, lines: bool = False) -> str:
    """`text` safe to print on a terminal: control and direction-changing characters escaped
    as `\\x1b`, `\\u202e`; with `lines`, line feeds and tabs are kept."""
    return (_UNSAFE_IN_LINES if lines else _UNSAFE).sub(_escape, str(text))


def exit_code_for(error: RoostError) -> int:
    if error.code in _BY_CODE:
        return _BY_CODE[error.code]
    for cls, code in _BY_CLASS:
        if isinstance(error, cls):
            return code
    return EXIT_BACKEND if error.code in ("workspace_corrupt", "workspace_failed", "protocol_error") else EXIT_FAILURE


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def hint_for(error: RoostError) -> str:
    """The error's hint as the CLI says it: with the option that is the way out, where one is."""
    if error.code in _HINTS_BY_CODE:
        return _HINTS_BY_CODE[error.code]
    return error.remedy.as_command() if error.remedy is not None else error.hint


def workspace_hint(info: WorkspaceInfo) -> str | None:
    """What an unhealthy or failed workspace needs, as the command line that does it."""
    return info.remedy.as_command() if info.remedy is not None else None


def workspace_json(info: WorkspaceInfo) -> dict[str, Any]:
    """A workspace's `--json` document: `to_dict()`, its hint a command line."""
    return {**info.to_dict(), "hint": workspace_hint(info)}


def emit_error(error: RoostError, *, as_json: bool) -> int:
    hint = hint_for(error)
    if as_json:
        sys.stderr.write(json.dumps({"error": {**error.to_dict(), "hint": hint}}, sort_keys=True) + "\n")
    else:
        sys.stderr.write(f"roost: error: {shown(error.message, lines=True)} [{error.code}]\n")
        if hint:
            sys.stderr.write(f"hint: {shown(hint, lines=True)}\n")
    sys.stderr.flush()
    return exit_code_for(error)


def warn(message: str) -> None:
    sys.stderr.write(f"roost: warning: {shown(message, lines=True)}\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns, two spaces apart; every cell passes through `shown`."""
    cells = [[shown(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(cell) for cell in column) for column in zip(*cells, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in cells]
    return "\n".join(lines)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class StreamedTable:
    """Rows printed as they arrive: every column but the last padded to a fixed width, every cell through `shown`.

    The header comes with the first row, so an empty listing prints nothing.
    """

    def __init__(self, headers: list[str], widths: list[int]) -> None:
        self._headers = headers
        self._widths = widths
        self.rows = 0

    def _line(self, cells: list[str]) -> str:
        padded = [shown(cell).ljust(width) for cell, width in zip(cells, self._widths, strict=False)]
        return "  ".join([*padded, *(shown(cell) for cell in cells[len(self._widths) :])]).rstrip()

    def row(self, cells: list[str]) -> None:
        if not self.rows:
            sys.stdout.write(self._line(self._headers) + "\n")
        sys.stdout.write(self._line(cells) + "\n")
        self.rows += 1


def started(items: Iterator[T]) -> Iterator[T]:
    """`items` with its first one fetched already, so a failure at the start comes before any output."""
    marker = object()
    first = next(items, marker)
    return iter(()) if first is marker else itertools.chain((first,), items)  # type: ignore[arg-type]


def _dumped(value: Any, indent: str) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str).replace("\n", "\n" + indent)


class JsonStream:
    """One JSON object written to stdout member by member, laid out as `emit_json` lays one out.

    Write members in sorted key order to match it. Should the command fail
    part-way, the document is cut short; the exit status and stderr say why.
    """

    def __init__(self) -> None:
        self._members = 0
        sys.stdout.write("{")

    def _key(self, key: str) -> None:
        sys.stdout.write(("," if self._members else "") + "\n  " + json.dumps(key) + ": ")
        self._members += 1

    def value(self, key: str, value: Any) -> None:
        self._key(key)
        sys.stdout.write(_dumped(value, "  "))

    def array(self, key: str, items: Iterable[Any]) -> int:
        """Write `items` as the array `key`, each as it comes; return how many there were."""
        self._key(key)
        sys.stdout.write("[")
        count = 0
        for item in items:
            sys.stdout.write(("," if count else "") + "\n    " + _dumped(item, "    "))
            count += 1
        sys.stdout.write("\n  ]" if count else "]")
        return count

    def text(self, key: str, pieces: Iterable[str]) -> None:
        """Write the string `key` from its pieces, never holding it whole."""
        self._key(key)
        sys.stdout.write('"')
        for piece in pieces:
            sys.stdout.write(json.dumps(piece)[1:-1])
        sys.stdout.write('"')

    def close(self) -> None:
        sys.stdout.write("\n}\n" if self._members else "}\n")
        sys.stdout.flush()
