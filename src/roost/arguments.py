"""Checks for the values callers hand roost: numbers in range, names, labels, environments, commands.

Every face (CLI, SDK, MCP) reaches workspaces through the SDK, and the
workspace layer runs these checks before it makes a directory, writes a
record or calls an agent. A bad value is therefore refused once, the same
way on every face, as `invalid_argument` with a hint naming the valid
range; it never surfaces later as an OverflowError, a ValueError from deep
inside, or a half-made workspace.

Each check takes the value as given (`object`: a Python caller may pass
anything, and `True` is an `int` in Python) and returns it typed.

Imports: confinement, errors, protocol (limits, ignore, names, records, the name and size checks of
the shell, service and snapshot messages) and the standard library only.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence

from roost.confinement import ConfinedPath, HostArg
from roost.errors import InvalidArgument
from roost.protocol.ignore import IgnoreSpec, parse_pattern
from roost.protocol.limits import (
    MAX_EXCLUDE_PATTERN_BYTES,
    MAX_EXCLUDE_PATTERNS,
    MAX_FILE_OFFSET,
    MAX_TERMINAL_CELLS,
)
from roost.protocol.limits import MAX_SHELL_WAIT_MS as _MAX_SHELL_WAIT_MS
from roost.protocol.messages import OpError
from roost.protocol.names import NameFormError, as_bytes, from_text, to_text
from roost.protocol.ops.message import shown
from roost.protocol.ops.services import check_service_name
from roost.protocol.ops.shells import check_terminal_size
from roost.protocol.ops.snapshots import check_snapshot_name
from roost.protocol.records import CursorError, decode_cursor

# The protocol's bounds the front ends show in their schemas (they reach below only through here and the SDK).
SHELL_WAIT_LIMIT_MS = _MAX_SHELL_WAIT_MS
TERMINAL_CELLS_LIMIT = MAX_TERMINAL_CELLS

# Workspace ids are this prefix and hex digits; names must never read as one.
WORKSPACE_ID_PREFIX = "ws-"

MAX_TTL_SECONDS = 10 * 365 * 24 * 3600  # ten years
MAX_EXEC_TIMEOUT_S = 7 * 24 * 3600  # a week
MAX_READY_TIMEOUT_S = 3600
MIN_READY_INTERVAL_MS = 10
MAX_READY_INTERVAL_MS = 60_000
MAX_STOP_GRACE_S = 3600
MAX_VCPUS = 256
MAX_FORK_CHILDREN = 100  # workspaces one fork makes at most
MIN_MEM_MIB = 64
MAX_MEM_MIB = 1024 * 1024  # 1 TiB
MIN_PIDS = 16  # the agent, a shell and a command need a few
MAX_PIDS = 4_194_304  # the kernel's pid_max ceiling
MAX_LOG_TAIL_LINES = 1_000_000
MAX_PORT = 65535

_WORKSPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}")
MAX_LABEL_VALUE = 256
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def whole_number(value: object, what: str, low: int, high: int, *, unit: str = "", example: int | None = None) -> int:
    """An `int` (not a bool, not a float) from `low` to `high`, counting `unit`s.

    Raises:
        InvalidArgument: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        of = f" of {unit}" if unit else ""
        hint = f"give a whole number from {low} to {high}" + (f", e.g. {example}" if example is not None else "")
        raise InvalidArgument(f"{what} must be a whole number{of} from {low} to {high}, not {shown(value)}", hint=hint)
    return value


def seconds(value: object, what: str, high: float, *, zero_ok: bool = False, example: float = 60) -> float:
    """A finite number of seconds above 0 (or from 0, with `zero_ok`) and at most `high`.

    NaN fails every comparison, so it is refused with the infinities.

    Raises:
        InvalidArgument: anything else.
    """
    lowest_ok = 0.0 if zero_ok else math.nextafter(0.0, 1.0)
    if not isinstance(value, bool) and isinstance(value, int | float) and lowest_ok <= value <= high:
        return float(value) + 0.0  # -0.0 becomes 0.0
    span = f"from 0 to {high:g}" if zero_ok else f"above 0 and at most {high:g}"
    raise InvalidArgument(
        f"{what} must be a number of seconds {span}, not {shown(value)}",
        hint=f"give a number of seconds {span}, e.g. {example:g}",
    )


# -- numbers of the public surface -----------------------------------------------------


def ttl_seconds(value: object) -> int:
    """Raises: InvalidArgument: not a whole number of seconds from 1 to ten years."""
    return whole_number(value, "ttl", 1, MAX_TTL_SECONDS, unit="seconds", example=3600)


def exec_timeout(value: object) -> float | None:
    """Raises: InvalidArgument: not None nor seconds above 0 and at most a week."""
    return None if value is None else seconds(value, "timeout", MAX_EXEC_TIMEOUT_S)


def stop_grace(value: object) -> float | None:
    """Seconds between TERM and KILL; 0 kills at once. Raises: InvalidArgument."""
    return None if value is None else seconds(value, "timeout", MAX_STOP_GRACE_S, zero_ok=True, example=10)


def file_offset(value: object, what: str = "offset") -> int:
    """A byte offset (or a cursor) into a file or stream. Raises: InvalidArgument."""
    return whole_number(value, what, 0, MAX_FILE_OFFSET, unit="bytes", example=0)


def read_size(value: object, what: str, limit: int, *, low: int = 0) -> int:
    """How many bytes one call may return.

    Raises:
        InvalidArgument: not a whole number from `low` (invalid_argument), or above `limit` (read_too_large).
    """
    if isinstance(value, int) and not isinstance(value, bool) and value > limit:
        raise InvalidArgument(
            f"{what} {value} is above the per-call limit of {limit}",
            code="read_too_large",
            hint="read in pages with the offset or cursor",
        )
    return whole_number(value, what, low, limit, unit="bytes", example=min(65536, limit))


def optional_count(value: object, what: str, high: int, *, low: int = 1, unit: str = "") -> int | None:
    """None, or a whole number from `low` to `high`. Raises: InvalidArgument."""
    return None if value is None else whole_number(value, what, low, high, unit=unit)


def terminal_size(cols: object, rows: object) -> tuple[int, int]:
    """The shell ops' own check (`roost.protocol.ops.shells`), for a face that asks early.

    Raises:
        InvalidArgument: cols or rows outside 1..1000.
    """
    _as_invalid_argument(check_terminal_size, cols, rows)
    assert isinstance(cols, int) and isinstance(rows, int)
    return cols, rows


def _as_invalid_argument(check: Callable[..., object], *values: object) -> None:
    """Run one of protocol's message checks, its OpError raised as InvalidArgument (the same words)."""
    try:
        check(*values)
    except OpError as exc:
        raise InvalidArgument(exc.message, hint=exc.hint) from None


def resources(vcpus: object, mem_mib: object, pids: object = None) -> dict[str, int]:
    """The resource requests that were given, checked. Raises: InvalidArgument."""
    given: dict[str, int] = {}
    if vcpus is not None:
        given["vcpus"] = whole_number(vcpus, "vcpus", 1, MAX_VCPUS, example=2)
    if mem_mib is not None:
        given["mem_mib"] = whole_number(mem_mib, "mem-mib", MIN_MEM_MIB, MAX_MEM_MIB, unit="MiB", example=1024)
    if pids is not None:
        given["pids"] = whole_number(pids, "pids", MIN_PIDS, MAX_PIDS, example=1024)
    return given


def port(value: object, what: str = "port") -> int:
    """Raises: InvalidArgument: not a TCP port number 1..65535."""
    return whole_number(value, what, 1, MAX_PORT, example=8000)


# -- names -------------------------------------------------------------------------------


def workspace_name(name: object) -> str:
    """A name that can never be mistaken for an id or an id prefix.

    A reference that starts with `ws-` is read as an id or an id prefix and
    anything else as a name, so a name may not start with `ws-`.

    Raises:
        InvalidArgument: anything else.
    """
    if not isinstance(name, str) or not _WORKSPACE_NAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid workspace name {shown(name)}",
            hint="use 1-63 of a-z 0-9 _ . - starting with a letter or digit",
        )
    if name.startswith(WORKSPACE_ID_PREFIX):
        raise InvalidArgument(
            f"workspace name {name!r} could be read as a workspace id",
            hint=f"names may not start with {WORKSPACE_ID_PREFIX!r}, which marks ids; e.g. 'app-1'",
        )
    return name


def service_name(name: object) -> str:
    """Raises: InvalidArgument: not 1-63 of a-z 0-9 _ . - starting with a letter or digit."""
    _as_invalid_argument(check_service_name, name)
    assert isinstance(name, str)
    return name


def snapshot_name(name: object) -> str:
    """Raises: InvalidArgument: not 1-63 of A-Z a-z 0-9 _ . - starting with a letter or digit."""
    _as_invalid_argument(check_snapshot_name, name)
    assert isinstance(name, str)
    return name


def labels(value: object) -> dict[str, str]:
    """Label keys of letters, digits and `_ . - /`; values strings of at most 256 characters.

    Raises:
        InvalidArgument: a bad key or value.
    """
    given = _mapping(value, "labels", "e.g. {'team': 'core'}")
    for key, text in given.items():
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                f"invalid label key {shown(key)}",
                hint="use 1-63 of letters, digits and _ . - / starting with a letter or digit",
            )
        if not isinstance(text, str) or len(text) > MAX_LABEL_VALUE:
            raise InvalidArgument(
                f"label {key!r} must be a string of at most {MAX_LABEL_VALUE} characters",
                hint="shorten the value",
            )
    return given


# -- what runs in the workspace ----------------------------------------------------------


def env_vars(value: object, what: str = "env") -> dict[str, str]:
    """Environment variables: POSIX-style names (letters, digits, `_`, not starting with a digit),
    string values without NUL (a C string cannot hold one).

    Raises:
        InvalidArgument: a bad name or value.
    """
    given = _mapping(value, what, "e.g. {'DEBUG': '1'}")
    for name, text in given.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise InvalidArgument(
                f"invalid environment variable name {shown(name)}",
                hint="use letters, digits and _, not starting with a digit, e.g. MY_VAR",
            )
        if not isinstance(text, str) or "\0" in text:
            raise InvalidArgument(
                f"environment variable {name} must be a string without NUL bytes", hint="remove the NUL byte"
            )
    return given


def _mapping(value: object, what: str, example: str) -> dict[str, str]:
    """A copy of a dict (None: empty) whose items the caller still checks one by one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must map names to values, not {shown(value)}", hint=example)
    return dict(value)


def command(value: object, what: str = "command") -> str | list[str]:
    """A script for `bash -c` (not blank) or an argv (a non-empty list of strings, the first not empty).

    Raises:
        InvalidArgument: anything else, or a NUL byte anywhere.
    """
    hint = "e.g. -- python3 -c 'print(1)', or a script with -c"
    if isinstance(value, str):
        if not value.strip():
            raise InvalidArgument(f"give a {what} to run", hint=hint)
        if "\0" in value:
            raise InvalidArgument(f"the {what} contains a NUL byte", hint="remove the NUL byte")
        return value
    if isinstance(value, Sequence) and value and all(isinstance(arg, str) for arg in value):
        argv = list(value)
        if not argv[0]:
            raise InvalidArgument(f"the {what}'s program name is empty", hint=hint)
        if any("\0" in arg for arg in argv):
            raise InvalidArgument(f"the {what} contains a NUL byte", hint="remove the NUL byte")
        return argv
    raise InvalidArgument(f"give a {what} to run: a string or a list of strings, not {shown(value)}", hint=hint)


def guest_path(value: object, what: str = "path") -> str:
    """A path inside the workspace, as `str` (`os.fsdecode` form) or `bytes`, in the text form the agent reads.

    The agent resolves and confines it; see `roost.protocol.names` for the form.

    Raises:
        InvalidArgument: as `guest_name`.
    """
    return to_text(guest_name(value, what))


def guest_name(value: object, what: str = "path") -> str:
    """A path inside the workspace, as `str` (`os.fsdecode` form) or `bytes`, as the native `str` op messages hold.

    Raises:
        InvalidArgument: not a non-empty str or bytes, a NUL byte in it, or a str no bytes decode to.
    """
    if not isinstance(value, str | bytes) or not value:
        raise InvalidArgument(f"{what} must be a non-empty path, not {shown(value)}", hint="e.g. /workspace/src")
    if (isinstance(value, str) and "\0" in value) or (isinstance(value, bytes) and b"\0" in value):
        raise InvalidArgument(f"{what} contains a NUL byte", hint="remove the NUL byte")
    try:
        raw = as_bytes(value)
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{what} {shown(value)} holds a surrogate that stands for no byte",
            hint="give the path as bytes, or as os.fsdecode makes it from bytes",
        ) from None
    return os.fsdecode(raw)


def name_from_text(text: str, what: str = "path") -> str:
    """A name in its text form (as listings, diffs and patches write it, C-quoted where needed) as a native `str`.

    For front ends that take names back as a model or a script was given them.

    Raises:
        InvalidArgument: a quoted name that is not well formed.
    """
    try:
        return from_text(text)
    except NameFormError as exc:
        raise InvalidArgument(f"{what}: {exc}", hint="pass the name exactly as a listing gave it") from None


def list_cursor(value: object) -> str | None:
    """A `next_cursor` a listing handed out (None: from the start).

    Raises:
        InvalidArgument: anything that is not such a cursor.
    """
    if value is None:
        return None
    hint = "pass a next_cursor exactly as it was given, or none to start at the beginning"
    if not isinstance(value, str):
        raise InvalidArgument(f"cursor must be a string, not {shown(value)}", hint=hint)
    try:
        decode_cursor(value)
    except CursorError as exc:
        raise InvalidArgument(f"cursor {shown(value)}: {exc}", hint=hint) from None
    return value


def host_path(value: object, what: str) -> HostArg:
    """A path on the host (seed, sync source, export output): a string, or a `ConfinedPath` as it is.

    Raises:
        InvalidArgument: not a non-empty str or os.PathLike of str, or a NUL byte in it.
    """
    if isinstance(value, ConfinedPath):
        return value
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"{what} must be a host path, not {shown(value)}", hint="e.g. ./repo")
    if "\0" in path:
        raise InvalidArgument(f"{what} contains a NUL byte", hint="remove the NUL byte")
    return path


_EXCLUDE_HINT = "give gitignore patterns relative to /workspace, e.g. 'node_modules/', '*.log' or '/build'"


def _exclude_pattern(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"an exclude pattern must be a non-empty string, not {shown(value)}", hint=_EXCLUDE_HINT)
    if any(c in value for c in "\0\n\r"):
        raise InvalidArgument(f"exclude pattern {shown(value)} holds a newline or NUL", hint="give one pattern each")
    negated, pattern = value.startswith("!"), value.removeprefix("!")
    # A guest path reads as the anchored pattern it means: "/workspace/build" is "/build".
    if pattern.rstrip("/") == "/workspace":
        raise InvalidArgument(f"exclude pattern {value!r} names all of /workspace", hint=_EXCLUDE_HINT)
    if pattern.startswith("/workspace/"):
        pattern = pattern.removeprefix("/workspace")
    if pattern.startswith("#"):
        pattern = "\\" + pattern  # one pattern per --exclude, never a comment line
    pattern = ("!" if negated else "") + pattern
    encoded = pattern.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_EXCLUDE_PATTERN_BYTES:
        raise InvalidArgument(
            f"exclude pattern {shown(value)} is over {MAX_EXCLUDE_PATTERN_BYTES} bytes", hint=_EXCLUDE_HINT
        )
    parsed = parse_pattern(encoded)
    if parsed is None or parsed.regex is None:
        raise InvalidArgument(
            f"exclude pattern {value!r} can never match anything (an unclosed '[' or a trailing backslash?)",
            hint="close the bracket, or escape a literal '[' as '\\['",
        )
    return pattern


def ignore_spec(exclude: object, gitignore: object, include_git_dir: object, *, git_dir_default: bool) -> IgnoreSpec:
    """The ignore rules of a diff or export, checked: `--exclude`, `--gitignore`, `--include-git-dir`.

    `include_git_dir` None takes `git_dir_default`.

    Raises:
        InvalidArgument: not a list of patterns, a pattern that is empty, too long, holds a
            newline or can never match, too many patterns, or a flag that is not a bool.
    """
    if isinstance(exclude, str | bytes) or not isinstance(exclude, Sequence):
        raise InvalidArgument(f"exclude must be a list of patterns, not {shown(exclude)}", hint=_EXCLUDE_HINT)
    if len(exclude) > MAX_EXCLUDE_PATTERNS:
        raise InvalidArgument(
            f"{len(exclude)} exclude patterns; at most {MAX_EXCLUDE_PATTERNS} per call",
            hint="exclude a common directory, or use a glob that covers several",
        )
    patterns = tuple(_exclude_pattern(p) for p in exclude)
    for value, what in ((gitignore, "gitignore"), (include_git_dir, "include_git_dir")):
        if value is not None and not isinstance(value, bool):
            raise InvalidArgument(f"{what} must be true or false, not {shown(value)}", hint=f"e.g. {what}=True")
    keep_git = git_dir_default if include_git_dir is None else include_git_dir
    return IgnoreSpec(patterns, bool(gitignore), bool(keep_git))
