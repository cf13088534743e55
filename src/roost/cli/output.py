"""How the CLI speaks: one JSON document with --json, readable text otherwise,
errors on stderr with a stable code and a hint, and exit codes by error kind.

Imports: errors and the standard library only.
"""

from __future__ import annotations

import json
import sys
from typing import Any

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
_BY_CLASS: tuple[tuple[type[RoostError], int], ...] = (
    (InvalidArgument, EXIT_USAGE),
    (NotFound, EXIT_NOT_FOUND),
    (ConflictError, EXIT_CONFLICT),
    (BackendError, EXIT_BACKEND),
    (AgentError, EXIT_BACKEND),
    (StorageError, EXIT_BACKEND),
    (ImageError, EXIT_IMAGE),
)


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


def emit_error(error: RoostError, *, as_json: bool) -> int:
    if as_json:
        sys.stderr.write(json.dumps({"error": error.to_dict()}, sort_keys=True) + "\n")
    else:
        sys.stderr.write(f"roost: error: {error.message} [{error.code}]\n")
        if error.hint:
            sys.stderr.write(f"hint: {error.hint}\n")
    sys.stderr.flush()
    return exit_code_for(error)


def warn(message: str) -> None:
    sys.stderr.write(f"roost: warning: {message}\n")


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
