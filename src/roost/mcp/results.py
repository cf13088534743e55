"""Run a tool's blocking SDK work off the event loop and turn its outcome into a `CallToolResult`.

A tool that can be cancelled (`workspace_exec`) passes an event its work
watches. Success: the tool's dict as structured content, and the same dict as JSON
text (after an optional note line). Failure: a tool error (`isError`) whose
text and structured content are `{"error": {"code", "message", "hint"}}`.
A `RoostError` keeps its own code; anything else becomes `internal`, with the
traceback going to the server's log only, never to the model. A remedy (the
call that fixes an error, or an unhealthy or failed workspace) is phrased
here, and only here, as the tool call a model can make, never as a CLI
command it cannot run. (Arguments that fail a tool's schema come back in the
same shape through `roost.mcp.strict_server`.)

File names reach results in their quoted text form (`to_dict` writes them
so). Any other string holding a byte that is not UTF-8 (an error message
naming a file, say) arrives surrogate-escaped, which JSON on the wire cannot
carry: results show each such byte as `\\xNN` instead, so a workspace can
never make a result unsendable (and the server fall over).

This module imports `roost.errors`, `roost.models`, its sibling `progress`, the `mcp` types, anyio and the standard library.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from mcp.types import CallToolResult, TextContent

from roost.errors import RoostError
from roost.mcp.progress import ToolProgress
from roost.models import WorkspaceInfo

logger = logging.getLogger("roost.mcp")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ToolReply:
    """A tool's structured result plus an optional line of prose put before it in the text."""

    data: dict[str, Any]
    note: str | None = None


ToolWork = Callable[[], dict[str, Any] | ToolReply]


def success_result(reply: dict[str, Any] | ToolReply) -> CallToolResult:
    if isinstance(reply, dict):
        reply = ToolReply(reply)
    reply = ToolReply(_sendable(reply.data), reply.note)
    text = _dumps(reply.data)
    if reply.note:
        text = f"{reply.note}\n{text}"
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=reply.data)


def error_result(error: RoostError) -> CallToolResult:
    hint = error.remedy.as_tool_call() if error.remedy is not None else error.hint
    body = _sendable({"error": {"code": error.code, "message": error.message, "hint": hint}})
    return CallToolResult(content=[TextContent(type="text", text=_dumps(body))], structured_content=body, is_error=True)


def workspace_view(info: WorkspaceInfo) -> dict[str, Any]:
    """A workspace as a model sees it: its `hint` names the tool to call, not a CLI command."""
    view = info.to_dict()
    if info.remedy is not None:
        view["hint"] = info.remedy.as_tool_call()
    return view


def internal_error() -> RoostError:
    return RoostError(
        "the server failed unexpectedly while running this tool",
        code="internal",
        hint="retry once; if it persists, the server's log (stderr) has the details",
    )


async def offload(
    work: ToolWork, *, cancel: threading.Event | None = None, progress: ToolProgress | None = None
) -> CallToolResult:
    """Run `work` in a worker thread, so a long exec never blocks other calls, and map its outcome.

    With `cancel`, a client's `notifications/cancelled` for this call (the SDK cancels the call's
    scope) sets the event and ends the call at once; `work` sees the event and stops (an exec's
    process group is killed) in its thread, whose outcome no one waits for. With `progress`, its
    heartbeat runs beside the work.
    """
    try:
        reply = await _beside_heartbeat(work, cancel is not None, progress)
    except anyio.get_cancelled_exc_class():
        if cancel is not None:
            cancel.set()
        raise
    except RoostError as exc:
        return error_result(exc)
    except Exception:
        logger.exception("tool failed unexpectedly")
        return error_result(internal_error())
    return success_result(reply)


async def _beside_heartbeat(work: ToolWork, abandon: bool, progress: ToolProgress | None) -> dict[str, Any] | ToolReply:
    """`work`'s outcome, with `progress`'s heartbeat running until it is known (its error raised as it is)."""
    if progress is None:
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=abandon)
    outcome: list[dict[str, Any] | ToolReply] = []
    failure: list[Exception] = []
    async with anyio.create_task_group() as beside:
        beside.start_soon(progress.heartbeat)
        try:
            outcome.append(await anyio.to_thread.run_sync(work, abandon_on_cancel=abandon))
        except Exception as exc:  # raised below, outside the group, which would wrap it
            failure.append(exc)
        finally:
            beside.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return outcome[0]


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _sendable(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) written out as an escape."""
    if isinstance(value, str):
        return _SURROGATE.sub(_escape_surrogate, value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_sendable(key): _sendable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_sendable(item) for item in value]
    return value


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
