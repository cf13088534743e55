"""The host side of the agent protocol: one multiplexed connection.

`AgentClient` owns a byte stream to an agent. A reader thread decodes
frames and hands each to the call waiting on its request id, so several
threads (an MCP server's tool calls, say) share one connection. Errors are
translated here, once: error frames become `RoostError`s by code, a stream
that ends mid-call becomes `AgentError(agent_disconnected)`.

Imports: protocol, errors and the standard library only.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from roost.errors import AgentError, ProtocolError, RoostError, error_from_code
from roost.protocol import (
    PROTOCOL_VERSIONS,
    Frame,
    FrameError,
    Kind,
    read_frame,
    write_frame,
)
from roost.protocol.identity import AgentIdentity, new_nonce

UPLOAD_CHUNK = 1024 * 1024

OnData = Callable[[str, bytes], None]


class ByteStream(Protocol):
    def recv_into(self, buffer: memoryview) -> int: ...
    def sendall(self, data: bytes) -> object: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Reply:
    """What a call returned: the result object, the response body, and any
    streamed data that was not handed to an `on_data` callback."""

    result: dict[str, Any]
    body: bytes = b""
    streams: dict[str, bytes] = field(default_factory=dict)


class _Broken:
    """Queue sentinel: the connection ended while the call waited."""

    def __init__(self, error: RoostError) -> None:
        self.error = error


def _disconnected(detail: str) -> AgentError:
    return AgentError(
        f"the workspace agent went away mid-call ({detail})",
        code="agent_disconnected",
        hint="check `roost workspace status`; the workspace may need to be recreated",
    )


class AgentClient:
    """A handshaken, multiplexed connection to one agent."""

    def __init__(
        self, stream: ByteStream, *, client_name: str = "roost", identity: AgentIdentity | None = None
    ) -> None:
        self._stream = stream
        self._send_lock = threading.Lock()
        self._pending: dict[int, queue.SimpleQueue[Frame | _Broken]] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._broken: RoostError | None = None
        try:
            self.hello = self._handshake(client_name, identity)
        except BaseException:
            self._close_stream()
            raise
        self._reader = threading.Thread(target=self._read_loop, name="agent-reader", daemon=True)
        self._reader.start()

    # -- set-up and tear-down -----------------------------------------------
    def _handshake(self, client_name: str, identity: AgentIdentity | None) -> dict[str, Any]:
        hello: dict[str, Any] = {"versions": list(PROTOCOL_VERSIONS), "client": client_name}
        nonce = new_nonce()
        if identity is not None:
            hello["nonce"] = nonce
        try:
            write_frame(self._stream.sendall, Kind.HELLO, hello)
            frame = read_frame(self._stream.recv_into)
        except FrameError as exc:
            raise ProtocolError(f"bad handshake from the agent: {exc}") from None
        except OSError as exc:
            raise _disconnected(f"during handshake: {exc}") from None
        if frame is None:
            raise _disconnected("closed during handshake")
        if frame.kind is Kind.ERROR:
            raise error_from_code(
                str(frame.header.get("code", "protocol_error")),
                str(frame.header.get("message", "handshake refused")),
                frame.header.get("hint") or None,
            )
        if frame.kind is not Kind.HELLO:
            raise ProtocolError(f"expected HELLO from the agent, got {frame.kind.name}")
        if identity is not None:
            wrong = identity.check(nonce, frame.header)
            if wrong is not None:
                raise AgentError(
                    f"the agent that answered is not workspace {identity.workspace_id}'s: {wrong}",
                    code="agent_identity_mismatch",
                    hint="check `roost workspace status`; the workspace may need to be recreated",
                )
        return dict(frame.header)

    def close(self) -> None:
        self._fail_all(_disconnected("connection closed by the host"))
        self._close_stream()

    def _close_stream(self) -> None:
        # close() alone leaves the socket open while our reader is blocked in
        # recv on it, so the agent would never see the end of the stream.
        shutdown = getattr(self._stream, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._stream.close()
        except OSError:
            pass

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._broken is None

    # -- the reader ----------------------------------------------------------
    def _read_loop(self) -> None:
        try:
            while True:
                frame = read_frame(self._stream.recv_into)
                if frame is None:
                    self._fail_all(_disconnected("connection closed"))
                    return
                self._deliver(frame)
        except FrameError as exc:
            self._fail_all(ProtocolError(f"garbled stream from the agent: {exc}"))
        except OSError as exc:
            self._fail_all(_disconnected(str(exc)))

    def _deliver(self, frame: Frame) -> None:
        rid = frame.request_id
        if rid == 0 and frame.kind is Kind.ERROR:
            # An error about the connection itself: every call is affected.
            self._fail_all(
                error_from_code(
                    str(frame.header.get("code", "protocol_error")),
                    str(frame.header.get("message", "agent reported a connection error")),
                )
            )
            return
        with self._pending_lock:
            waiter = self._pending.get(rid)
        if waiter is not None:
            waiter.put(frame)

    def _fail_all(self, error: RoostError) -> None:
        with self._pending_lock:
            if self._broken is None:
                self._broken = error
            waiters = list(self._pending.values())
        for waiter in waiters:
            waiter.put(_Broken(error))

    # -- calls ---------------------------------------------------------------
    def _send(self, kind: Kind, header: dict[str, Any], body: bytes = b"") -> None:
        try:
            with self._send_lock:
                write_frame(self._stream.sendall, kind, header, body)
        except FrameError as exc:
            raise ProtocolError(str(exc), code=exc.code, hint="send less per call") from None
        except OSError as exc:
            raise _disconnected(str(exc)) from None

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        body: bytes = b"",
        *,
        upload: Iterable[bytes] | None = None,
        on_data: OnData | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> Reply:
        """Run one operation on the agent and wait for its answer.

        `upload` streams a request body in chunks (archives, large files,
        stdin); `on_data` receives streamed output as it arrives, otherwise
        it is collected into `Reply.streams`. `on_start(request_id)` is told
        the call's id once it is sent, so another thread can `cancel` it.

        Raises:
            RoostError: the agent's error for this call, translated by code.
            AgentError: agent_disconnected when the stream ends first.
        """
        if self._broken is not None:
            raise self._broken
        rid = next(self._ids)
        waiter: queue.SimpleQueue[Frame | _Broken] = queue.SimpleQueue()
        with self._pending_lock:
            self._pending[rid] = waiter
        try:
            header: dict[str, Any] = {"id": rid, "op": op, "args": args or {}}
            if upload is not None:
                header["upload"] = True
            self._send(Kind.REQUEST, header, body)
            if on_start is not None:
                on_start(rid)
            if upload is not None:
                self._upload(rid, upload)
            return self._await(rid, waiter, on_data)
        except KeyboardInterrupt:
            self.cancel(rid)
            raise
        finally:
            with self._pending_lock:
                self._pending.pop(rid, None)

    def _upload(self, rid: int, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), UPLOAD_CHUNK):
                self._send(Kind.DATA, {"id": rid, "ch": "stdin"}, bytes(view[start : start + UPLOAD_CHUNK]))
        self._send(Kind.END, {"id": rid})

    def _await(self, rid: int, waiter: queue.SimpleQueue[Frame | _Broken], on_data: OnData | None) -> Reply:
        collected: dict[str, list[bytes]] = {}
        while True:
            item = waiter.get()
            if isinstance(item, _Broken):
                raise item.error
            if item.kind is Kind.DATA:
                channel = str(item.header.get("ch", "data"))
                if on_data is not None:
                    on_data(channel, item.body)
                else:
                    collected.setdefault(channel, []).append(item.body)
            elif item.kind is Kind.RESPONSE:
                result = item.header.get("result")
                return Reply(
                    result if isinstance(result, dict) else {},
                    item.body,
                    {ch: b"".join(parts) for ch, parts in collected.items()},
                )
            elif item.kind is Kind.ERROR:
                details = item.header.get("details")
                raise error_from_code(
                    str(item.header.get("code", "agent_error")),
                    str(item.header.get("message", "the agent reported an error")),
                    item.header.get("hint") or None,
                    details if isinstance(details, dict) else None,
                )
            else:
                raise ProtocolError(f"unexpected {item.kind.name} frame for request {rid}")

    def cancel(self, rid: int) -> None:
        """Ask the agent to stop call `rid` (best effort)."""
        try:
            self._send(Kind.CANCEL, {"id": rid})
        except RoostError:
            pass
