"""MCP progress notifications for a tool's long SDK work: image pulls and builds before a workspace exists,
and a heartbeat while any long call runs (an exec, with its output so far; a sync push; a snapshot).

The SDK reports `progress(step, done, total)` from the worker thread a tool's
work runs in (`roost.mcp.results.offload`); `ToolProgress` hands each report to
the event loop as a `notifications/progress` for the call's progressToken (the
`mcp` server sends nothing when the client gave none). MCP wants the progress
value to grow with every notification and the steps come from several sources
(a build's numbered steps, a pull's bytes per blob, a guest image's steps, the
heartbeat), so the value is the count of notifications so far and the message
says where the work is; byte counts of one blob are sent at most a few times a
second. The heartbeat (`ToolProgress.heartbeat`, run by `roost.mcp.results.offload`
beside the work) says every `HEARTBEAT_SECONDS` how long the call has run, with
the output an exec has sent so far (`count_output` is its output callback).

Imports: the `mcp` server context, anyio and the standard library.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import anyio
import anyio.from_thread
from mcp.server.mcpserver import Context

# Byte counts of a blob being pulled arrive per chunk; a client needs a few a second at most.
BYTES_INTERVAL_SECONDS = 0.5
# How often a long call says it is still going.
HEARTBEAT_SECONDS = 2.0
_MIB = 1024 * 1024
logger = logging.getLogger("roost.mcp")


def step_message(step: str, done: int, total: int) -> str:
    """What a client shows for one SDK progress report."""
    if step.startswith("sha256:"):
        return f"pulling {step[:19]}: {done / _MIB:.1f}/{total / _MIB:.1f} MiB"
    return f"[{done}/{total}] {step}" if total else step


def heartbeat_for(call: Context[Any, Any] | None, what: str) -> ToolProgress | None:
    """The progress of a tool call the SDK gave a context (None in calls made without one)."""
    return ToolProgress(call, what=what) if call is not None else None


class ToolProgress:
    """An SDK progress callback that reports to the MCP client of the current tool call."""

    def __init__(self, context: Context[Any, Any], clock: Any = time.monotonic, what: str = "working") -> None:
        self._context = context
        self._clock = clock
        self._what = what
        self._sent = 0
        self._last_bytes: dict[str, float] = {}
        self._broken = False
        self._output = 0
        self._counting = threading.Lock()

    def _next(self) -> int:
        with self._counting:
            self._sent += 1
            return self._sent

    def count_output(self, channel: str, data: bytes) -> None:
        """An exec's output callback: adds up what it has sent, for the heartbeat."""
        self._output += len(data)

    async def heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Until cancelled, say every `interval` seconds how long the call has run (and its output so far)."""
        began = self._clock()
        while not self._broken:
            await anyio.sleep(interval)
            message = f"{self._what}: {self._clock() - began:.0f} s"
            if self._output:
                message += f", {self._output / 1024:.1f} KiB of output so far"
            try:
                await self._context.report_progress(self._next(), None, message)
            except Exception:
                logger.warning("could not send a progress notification; sending no more for this call", exc_info=True)
                self._broken = True

    def __call__(self, step: str, done: int, total: int) -> None:
        """Called in the tool's worker thread; blocks until the notification is handed to the transport.

        A notification that cannot be sent (the client went away) never fails the work: the rest are dropped.
        """
        if self._broken:
            return
        if step.startswith("sha256:") and done < total:
            now = self._clock()
            if now - self._last_bytes.get(step, float("-inf")) < BYTES_INTERVAL_SECONDS:
                return
            self._last_bytes[step] = now
        try:
            anyio.from_thread.run(self._context.report_progress, self._next(), None, step_message(step, done, total))
        except Exception:
            logger.warning("could not send a progress notification; sending no more for this call", exc_info=True)
            self._broken = True
