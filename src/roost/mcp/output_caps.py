"""Cap the text a model sees: keep a head and a tail, name what was left out and where to read it.

Sizes are counted in UTF-8 bytes, so the offset in the marker is the byte
offset at which the omitted part starts in the saved output (exact for valid
UTF-8; output that was not UTF-8 was decoded with replacement characters and
its offsets are approximate).

This module imports only `roost.errors`, `roost.models`, its sibling `result_schemas` and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roost.errors import InvalidArgument
from roost.mcp.result_schemas import Schema, extended, result_schema
from roost.models import ExecResult

DEFAULT_MODEL_CHARS = 16 * 1024
MIN_MODEL_CHARS = 1024
MAX_MODEL_CHARS = 256 * 1024
STREAMS = ("stdout", "stderr")
# What an exec result adds over the SDK's for a model, per stream: whether this reply cut the middle
# out of the stream's text (the whole captured output stays readable with workspace_logs), and
# how many bytes it left out (0 when none). `<stream>_truncated` is something else, as in every
# face: roost's capture itself stopped at its limit, and what followed was never kept.
MODEL_FIELDS = tuple(f"{stream}_{field}" for stream in STREAMS for field in ("truncated_for_model", "omitted_bytes"))

# Given (offset where the omitted bytes start, how many were omitted), say how to read them.
ResumeHint = Callable[[int, int], str]


@dataclass(frozen=True)
class CappedText:
    """Text as the model gets it, with what was cut out of the middle."""

    text: str
    truncated: bool
    omitted_bytes: int = 0
    resume_offset: int = 0


def model_chars(value: int | None) -> int:
    """The per-field budget to use, `DEFAULT_MODEL_CHARS` when not given.

    Raises:
        InvalidArgument: a value outside MIN_MODEL_CHARS..MAX_MODEL_CHARS.
    """
    if value is None:
        return DEFAULT_MODEL_CHARS
    if not MIN_MODEL_CHARS <= value <= MAX_MODEL_CHARS:
        raise InvalidArgument(
            f"max_output_chars must be between {MIN_MODEL_CHARS} and {MAX_MODEL_CHARS}",
            hint="page through long output with workspace_logs (exec_id, stream, offset, max_bytes)",
        )
    return value


def cap_text(text: str, limit: int, resume: ResumeHint | None = None) -> CappedText:
    """Keep at most `limit` bytes of `text`: half from the head, half from the tail.

    The cut never splits a character. Between head and tail goes one marker line,
    `[... N bytes omitted; <resume hint>]`, the hint built from `resume`.
    """
    data = text.encode("utf-8")
    if len(data) <= limit:
        return CappedText(text, truncated=False)
    tail_budget = limit // 2
    head = data[: limit - tail_budget].decode("utf-8", errors="ignore")
    tail = data[len(data) - tail_budget :].decode("utf-8", errors="ignore") if tail_budget else ""
    head_len = len(head.encode("utf-8"))
    omitted = len(data) - head_len - len(tail.encode("utf-8"))
    marker = f"[... {omitted} bytes omitted"
    if resume is not None:
        marker += f"; {resume(head_len, omitted)}"
    marker += "]"
    return CappedText(f"{head}\n{marker}\n{tail}", truncated=True, omitted_bytes=omitted, resume_offset=head_len)


def exec_view(result: ExecResult, limit: int, resume: Callable[[str], ResumeHint | None]) -> dict[str, Any]:
    """An exec result as a model should see it: each stream capped, with the `MODEL_FIELDS` added.

    `resume(stream)` gives the hint for that stream's marker, or None when
    the full output cannot be read back.
    """
    view = result.to_dict()
    for stream in STREAMS:
        capped = cap_text(view[stream], limit, resume(stream))
        view[stream] = capped.text
        view[f"{stream}_truncated_for_model"] = capped.truncated
        view[f"{stream}_omitted_bytes"] = capped.omitted_bytes
    return view


def exec_view_schema() -> Schema:
    """The schema of an `exec_view`: the exec result's, with the `MODEL_FIELDS`."""
    per_stream = {"truncated_for_model": bool, "omitted_bytes": int}
    return extended(
        result_schema(ExecResult), {f"{stream}_{name}": kind for stream in STREAMS for name, kind in per_stream.items()}
    )


def timed_out_note(result: ExecResult, timeout: float | None) -> str | None:
    """A line for the model when the command was killed by its timeout, else None."""
    if not result.timed_out:
        return None
    after = f" after {timeout:g}s" if timeout is not None else ""
    return f"The command timed out{after} and its process group was killed; the partial output is below."
