"""The orchestration root: one store, backend selection, and agent connections.

`Runtime.call` is the single path by which orchestration talks to an
agent. It reuses one multiplexed connection per workspace, and when the
agent turns out to be gone it records the workspace as `unhealthy` with the
reason before re-raising, so the next `status` tells the truth.

Imports: backends, rpc, store, errors, config and the standard library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from roost.backends import Backend, get_backend
from roost.errors import AgentError, ConflictError, RoostError
from roost.rpc import AgentClient, Reply
from roost.rpc.client import OnData
from roost.store.records import WorkspaceRecord, WorkspaceStore

CONNECT_TIMEOUT = 2.0
_AGENT_GONE = ("agent_disconnected", "agent_unreachable")


class Runtime:
    """Shared state of one `Roost` instance (and of one CLI process)."""

    def __init__(self, home: Path, backend: str | None = None) -> None:
        self.store = WorkspaceStore(home)
        self.store.open()
        self.requested_backend = backend
        self._clients: dict[str, AgentClient] = {}
        self._connecting: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def home(self) -> Path:
        return self.store.home

    def backend(self, record: WorkspaceRecord) -> Backend:
        return get_backend(record.backend, self.home)

    def record(self, ref: str) -> WorkspaceRecord:
        return self.store.load(self.store.resolve(ref))

    # -- agent connections ---------------------------------------------------
    def agent(self, record: WorkspaceRecord) -> AgentClient:
        """The shared connection to a workspace's agent, opened on first use.

        Threads asking at once share one connect: a connection is never
        replaced while another thread may be using it.
        """
        with self._lock:
            client = self._clients.get(record.id)
            if client is not None and client.alive:
                return client
            connecting = self._connecting.setdefault(record.id, threading.Lock())
        with connecting:
            with self._lock:
                client = self._clients.get(record.id)
                if client is not None and client.alive:
                    return client
            if record.state == "stopped":
                raise ConflictError(
                    f"workspace {record.id} is stopped",
                    code="workspace_stopped",
                    hint=f"start it with `roost workspace start {record.id}`",
                )
            if record.state == "unhealthy":
                raise AgentError(
                    f"workspace {record.id} is unhealthy: {record.reason or 'unknown reason'}",
                    code="workspace_unhealthy",
                    hint=f"delete it with `roost workspace delete {record.id}` and create a new one",
                )
            backend = self.backend(record)
            client = backend.connect(self.store.dir(record.id), record.runtime, timeout=CONNECT_TIMEOUT)
            with self._lock:
                dead = self._clients.get(record.id)
                self._clients[record.id] = client
        if dead is not None:
            dead.close()  # it had already failed; nobody can be using it
        return client

    def call_until(
        self, record: WorkspaceRecord, op: str, args: dict[str, Any], on_data: OnData, stop: threading.Event
    ) -> Reply:
        """Run a streaming call (attach, follow) and cancel it once `stop` is set.

        `stop` is set on return too, whichever side ended the stream.
        """
        started: list[int] = []

        def begun(request_id: int) -> None:
            started.append(request_id)
            if stop.is_set():
                self.cancel(record, request_id)

        def watch() -> None:
            stop.wait()
            if started:
                self.cancel(record, started[0])

        threading.Thread(target=watch, name=f"{op}-stop", daemon=True).start()
        try:
            return self.call(record, op, args, on_data=on_data, on_start=begun)
        finally:
            stop.set()

    def cancel(self, record: WorkspaceRecord, request_id: int) -> None:
        """Ask the agent to stop a call started through `call(on_start=...)`."""
        with self._lock:
            client = self._clients.get(record.id)
        if client is not None:
            client.cancel(request_id)

    def forget(self, ws_id: str) -> None:
        with self._lock:
            client = self._clients.pop(ws_id, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

    def call(
        self,
        record: WorkspaceRecord,
        op: str,
        args: dict[str, Any] | None = None,
        body: bytes = b"",
        *,
        upload: Iterable[bytes] | None = None,
        on_data: OnData | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> Reply:
        """Run one agent operation for a workspace (`on_start`: see `AgentClient.call`).

        Raises:
            RoostError: the operation's error; `workspace_unhealthy` when the agent is gone.
        """
        try:
            return self.agent(record).call(op, args, body, upload=upload, on_data=on_data, on_start=on_start)
        except RoostError as exc:
            if exc.code in _AGENT_GONE:
                self.forget(record.id)
                self.check_health(record)
            raise

    # -- health --------------------------------------------------------------
    def check_health(self, record: WorkspaceRecord) -> WorkspaceRecord:
        """Probe a running workspace; persist `unhealthy` with the reason if it is not."""
        if record.state != "running":
            return record
        reason = self.backend(record).health(self.store.dir(record.id), record.runtime)
        if reason is None:
            return record

        def mark(current: WorkspaceRecord) -> WorkspaceRecord:
            if current.state != "running":
                return current
            return current.replace(state="unhealthy", reason=reason)

        try:
            return self.store.update(record.id, mark)
        except RoostError:
            return record
