"""The engine under the SDK: one workspace store, backend selection, and agent connections.

`Engine.call` is the single path by which orchestration talks to an
agent. It reuses one multiplexed connection per workspace, and when the
agent turns out to be gone it records the workspace as `unhealthy` with the
reason before re-raising, so the next `status` tells the truth. Every error
that comes of a gone agent leaves here pointing at the same way out
(`workspace restart`), whatever layer first noticed it.

Imports: backends, protocol's op messages, rpc, protocol.redaction, store (records, states), workspace.recovery,
workspace.redacted_streams and workspace.secrets, errors and the standard library.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from roost.backends import Backend, get_backend, select_backend
from roost.errors import AgentError, ConflictError, InvalidArgument, RoostError
from roost.protocol import Op
from roost.protocol.ops import Message
from roost.protocol.redaction import Redactor
from roost.rpc import AgentClient, AgentReply, CallStream, RecordStream
from roost.rpc.client import OnData
from roost.store.records import BootRecord, WorkspaceRecord, WorkspaceStore
from roost.store.states import CREATING, FAILED, RUNNING, STOPPED, UNHEALTHY, can_move
from roost.workspace import recovery
from roost.workspace.redacted_streams import IDLE_FLUSH_S, ChannelRedactor
from roost.workspace.secrets import redactor_for

# How soon a cancelled call is seen (`call_cancellable`).
CANCEL_POLL_SECONDS = 0.05

CONNECT_TIMEOUT = 2.0
_AGENT_GONE = ("agent_disconnected", "agent_unreachable")
INTERRUPTED_CREATE = "its create was interrupted: the process creating it ended before the workspace was ready"


# Ops whose output (body, streamed data, text in the result) may show what a process printed or a file
# holds: the workspace's attached secrets are redacted from them here, below every face.
REDACTED_OPS = frozenset(
    {
        Op.EXEC,
        Op.SHELL_READ,
        Op.SHELL_ATTACH,
        Op.SERVICE_LOGS,
        Op.SERVICE_START,
        Op.SERVICE_STATUS,
        Op.SERVICE_STOP,
    }
)

# Streams a person watches live, which may not end for long: what redaction holds back goes out when quiet.
LIVE_OPS = frozenset({Op.SHELL_ATTACH, Op.SERVICE_LOGS})


def _redacted_call(
    client: AgentClient,
    redactor: Redactor,
    args: Message,
    body: bytes,
    upload: Iterable[bytes] | None,
    on_data: OnData | None,
    on_start: Callable[[int], None] | None,
) -> AgentReply:
    """`client.call` with secrets redacted from all it returns, streamed data included (see `REDACTED_OPS`)."""
    idle_flush = IDLE_FLUSH_S if args.OP in LIVE_OPS else None
    channels = ChannelRedactor(redactor, on_data, idle_flush) if on_data is not None else None
    try:
        reply = client.call(
            args.OP,
            args.to_wire(),
            body,
            upload=upload,
            on_data=channels.feed if channels is not None else None,
            on_start=on_start,
        )
    finally:
        if channels is not None:
            channels.finish()
    return AgentReply(
        result=_redacted_json(redactor, reply.result),
        body=redactor.redact(reply.body),
        streams={channel: redactor.redact(data) for channel, data in reply.streams.items()},
    )


def _redacted_json(redactor: Redactor, value: Any) -> Any:
    if isinstance(value, str):
        return redactor.redact_text(value)
    if isinstance(value, dict):
        return {key: _redacted_json(redactor, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted_json(redactor, item) for item in value]
    return value


def read_boot(backend: str, stored: dict[str, Any]) -> BootRecord:
    """The boot record built-in backend `backend` keeps in a workspace's record, from its stored form.

    Raises:
        ValueError: an unknown backend; ValueError, TypeError, BackendError (runtime_corrupt):
            not a record of that backend.
    """
    try:
        found: Backend[BootRecord] = get_backend(backend)
    except InvalidArgument as exc:
        raise ValueError(exc.message) from None
    return found.read_boot(stored)


class Engine:
    """What one `Roost` instance (and one CLI process) works with: the store of its home, the
    backends, and one shared connection per workspace agent; every `roost.workspace` function
    takes it first.

    `backends` are used by name before the built-in ones (an embedder's, or a test's in-memory one).
    """

    def __init__(
        self, home: Path, backend: str | None = None, *, backends: Mapping[str, Backend[Any]] | None = None
    ) -> None:
        self._backends = dict(backends or {})
        self.store = WorkspaceStore(home, self._read_boot)
        self.store.open()
        self.requested_backend = backend
        self._clients: dict[str, AgentClient] = {}
        self._connecting: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def home(self) -> Path:
        return self.store.home

    def backend(self, record: WorkspaceRecord) -> Backend[Any]:
        """The backend that runs the workspace of `record`.

        Raises:
            InvalidArgument: unknown_backend.
        """
        return self._backends.get(record.backend) or get_backend(record.backend, self.home)

    def select_backend(self, requested: str | None = None) -> tuple[Backend[Any], str | None]:
        """The backend for a new workspace (`requested`, else this engine's, else the best
        available) and, for a fallback that isolates nothing, a warning.

        Raises:
            InvalidArgument: unknown_backend.
            BackendError: backend_unavailable.
        """
        name = requested or self.requested_backend
        given = self._backends.get(name) if name is not None else None
        return (given, None) if given is not None else select_backend(name, self.home)

    def _read_boot(self, backend: str, stored: dict[str, Any]) -> BootRecord:
        given = self._backends.get(backend)
        return read_boot(backend, stored) if given is None else given.read_boot(stored)

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
            if record.state == CREATING:
                record = self.check_health(record)
            if record.state == STOPPED:
                raise ConflictError(
                    f"workspace {record.id} is stopped", code="workspace_stopped", remedy=recovery.start(record.id)
                )
            if record.state == UNHEALTHY:
                raise AgentError(
                    f"workspace {record.id} is unhealthy: {record.reason or 'unknown reason'}",
                    code="workspace_unhealthy",
                    remedy=recovery.restart(record.id),
                )
            if record.state == FAILED:
                raise recovery.failed_error(record.id, record.reason)
            backend = self.backend(record)
            client = backend.connect(self.store.dir(record.id), record.boot, timeout=CONNECT_TIMEOUT)
            with self._lock:
                dead = self._clients.get(record.id)
                self._clients[record.id] = client
        if dead is not None:
            dead.close()  # it had already failed; nobody can be using it
        return client

    def call_until(self, record: WorkspaceRecord, args: Message, on_data: OnData, stop: threading.Event) -> AgentReply:
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

        threading.Thread(target=watch, name=f"{args.OP}-stop", daemon=True).start()
        try:
            return self.call(record, args, on_data=on_data, on_start=begun)
        finally:
            stop.set()

    def call_cancellable(
        self,
        record: WorkspaceRecord,
        args: Message,
        cancel: threading.Event,
        *,
        upload: Iterable[bytes] | None = None,
        on_data: OnData | None = None,
    ) -> AgentReply:
        """`call`, cancelled at the agent once another thread sets `cancel` (which this never sets itself).

        Raises:
            RoostError: as `call`; `cancelled` when `cancel` stopped it.
        """
        started: list[int] = []
        done = threading.Event()

        def watch() -> None:
            # The caller's event is theirs (they may reuse it): look at it now and then until the call ends.
            while not done.wait(CANCEL_POLL_SECONDS):
                if cancel.is_set() and started:
                    self.cancel(record, started[0])
                    return

        threading.Thread(target=watch, name=f"{args.OP}-cancel", daemon=True).start()
        try:
            return self.call(record, args, upload=upload, on_data=on_data, on_start=started.append)
        finally:
            done.set()

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
        args: Message,
        body: bytes = b"",
        *,
        upload: Iterable[bytes] | None = None,
        on_data: OnData | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> AgentReply:
        """Run one agent operation for a workspace (`on_start`: see `AgentClient.call`).

        `args`: the op's argument message (`roost.protocol.ops`); read the reply's result with
        `AgentReply.result_as` and the op's result message.

        Raises:
            RoostError: the operation's error; when the agent is gone, `agent_unreachable`,
                `agent_disconnected` or `workspace_unhealthy`, each with the restart remedy.
        """
        redactor = self.redactor(record) if args.OP in REDACTED_OPS else None
        try:
            client = self.agent(record)
            if redactor is None:
                return client.call(args.OP, args.to_wire(), body, upload=upload, on_data=on_data, on_start=on_start)
            return _redacted_call(client, redactor, args, body, upload, on_data, on_start)
        except RoostError as exc:
            self._explain(record, exc)
            raise

    def redactor(self, record: WorkspaceRecord) -> Redactor | None:
        """What hides the workspace's attached secrets in its outputs (None: it has none)."""
        return redactor_for(self.home, record)

    @contextlib.contextmanager
    def stream(
        self,
        record: WorkspaceRecord,
        args: Message,
        *,
        upload: Iterable[bytes] | None = None,
    ) -> Iterator[CallStream]:
        """Run one agent operation whose DATA is taken frame by frame, in bounded memory (`AgentClient.stream`).

        Errors, also those met while the frames are read, are explained as
        `call` explains them; leaving the block cancels a call not read to its end.

        Raises:
            RoostError: as `call`.
        """
        try:
            with self.agent(record).stream(args.OP, args.to_wire(), upload=upload) as stream:
                yield stream
        except RoostError as exc:
            self._explain(record, exc)
            raise

    @contextlib.contextmanager
    def records(
        self,
        record: WorkspaceRecord,
        args: Message,
        *,
        upload: Iterable[bytes] | None = None,
    ) -> Iterator[RecordStream]:
        """`stream` for an operation whose result is records (see `roost.protocol.records`)."""
        with self.stream(record, args, upload=upload) as stream:
            yield RecordStream(stream)

    def _explain(self, record: WorkspaceRecord, exc: RoostError) -> None:
        """Record what a failed call says about the workspace, and point the error at the way out."""
        if exc.code in _AGENT_GONE:
            self.forget(record.id)
            if self.check_health(record).state in (RUNNING, UNHEALTHY):
                exc.with_remedy(recovery.restart(record.id))
        elif exc.code == "agent_identity_mismatch":
            # Something answered in the agent's place: never talk to it again.
            self.forget(record.id)
            self.mark(record, UNHEALTHY, exc.message)
            exc.with_remedy(recovery.restart(record.id))
        elif exc.code == "unsupported_version":
            # An agent started by an older roost: a restart runs this roost's agent.
            self.forget(record.id)
            exc.with_remedy(recovery.restart(record.id))
        elif (way_out := recovery.for_error(exc.code, record.id)) is not None:
            exc.with_remedy(way_out)

    # -- health --------------------------------------------------------------
    def check_health(self, record: WorkspaceRecord) -> WorkspaceRecord:
        """Probe a running workspace, or a creating one's creator; persist what went wrong.

        A running workspace whose agent is gone becomes `unhealthy`; one still
        `creating` whose creator is gone (killed, crashed) becomes `failed`.
        Either way with the reason. When the record cannot be written (a full
        disk), the caller still gets the truth.
        """
        if record.state == RUNNING:
            reason = self.backend(record).health(self.store.dir(record.id), record.boot)
            new_state = UNHEALTHY
        elif record.state == CREATING:
            reason = None if self.store.owner_alive(record.id) else INTERRUPTED_CREATE
            new_state = FAILED
        else:
            return record
        if reason is None:
            return record
        return self.mark(record, new_state, reason)

    def mark(self, record: WorkspaceRecord, new_state: str, reason: str) -> WorkspaceRecord:
        """Persist that `record` (still in the state it was read in) is now `new_state`, and why.

        A record that changed meanwhile, or whose state cannot move there (one being
        deleted), is left as it is. When the record cannot be written (a full disk),
        the caller still gets the truth.
        """
        was = record.state

        def mark(current: WorkspaceRecord) -> WorkspaceRecord:
            if current.state != was or not can_move(was, new_state):
                return current
            return current.moved_to(new_state, reason=reason)

        try:
            return self.store.update(record.id, mark)
        except RoostError:
            return mark(record)
