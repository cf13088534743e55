"""The MCP server's TTL reaper: while the server runs, workspaces whose TTL has passed are reaped every
`reap_interval_s`, each reap told in one line on the server's log (stderr; stdout is the protocol's).

It runs as an anyio task for as long as the server's lifespan, and is cancelled with it (a reap under
way finishes first: a delete is never cut in half). A server whose lifespan is entered once per
session (streamable HTTP) still runs one reaper.

Imports `roost.client`, anyio and the standard library.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from roost.client import Roost


class TtlReaper:
    """Reaps expired workspaces of one `Roost` on a timer while `running()` is entered."""

    def __init__(self, roost: Roost, interval_s: float) -> None:
        self._roost = roost
        self._interval_s = interval_s
        self._active = threading.Lock()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if not self._active.acquire(blocking=False):
            yield  # another session's lifespan runs the reaper already
            return
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._reap_every_interval)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self._active.release()

    async def _reap_every_interval(self) -> None:
        while True:
            await anyio.sleep(self._interval_s)
            reaped = await anyio.to_thread.run_sync(self._roost.reap_due)
            if reaped:
                print(
                    f"roost MCP server: reaped {len(reaped)} expired workspace(s): {', '.join(reaped)}",
                    file=sys.stderr,
                    flush=True,
                )
