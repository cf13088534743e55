"""The host side of the agent protocol: one multiplexed connection.

`AgentClient` owns a byte stream to an agent. A reader thread decodes
frames and hands each to the call waiting on its request id, so several
threads (an MCP server's tool calls, say) share one connection. Errors are
translated here, once: error frames become `RoostError`s by code, a stream
that ends mid-call becomes `AgentError(agent_disconnected)`.

`call` waits for a whole answer; `stream` hands a call's DATA frames to the
caller one at a time under a window (the agent sends no more than that
ahead of what the caller has taken), so a result of any size passes through
in bounded memory.

Imports: protocol, errors and the standard library only.
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from roost.errors import CHECK_WORKSPACE, AgentError, ProtocolError, RoostError, error_from_code
from roost.protocol import (
    PROTOCOL_VERSIONS,
    Frame,
    FrameError,
    Kind,
    OpError,
    read_frame,
    write_frame,
)
from roost.protocol.identity import AgentIdentity, new_nonce
from roost.protocol.messages import STREAM_WINDOW_BYTES
from roost.protocol.ops.message import Message

M = TypeVar("M", bound=Message)

UPLOAD_CHUNK = 1024 * 1024

OnData = Callable[[str, bytes], None]


class ByteStream(Protocol):
    def recv_into(self, buffer: memoryview) -> int: ...
    def sendall(self, data: bytes) -> object: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class AgentReply:
    """What a call returned: the result object, the response body, and any
    streamed data that was not handed to an `on_data` callback."""

    result: dict[str, Any]
    body: bytes = b""
    streams: dict[str, bytes] = field(default_factory=dict)

    def result_as(self, message: type[M]) -> M:
        """The result as the op's result message (`roost.protocol.ops`).

        Raises:
            ProtocolError: the agent sent a result that is not one.
        """
        return received(message, self.result)


def received(message: type[M], data: dict[str, Any]) -> M:
    """`message` made from what the agent sent.

    Raises:
        ProtocolError: it does not make one: the agent does not speak our protocol.
    """
    try:
        return message.from_wire(data)
    except OpError as exc:
        raise ProtocolError(f"the agent sent a {message.__name__} that does not check: {exc.message}") from None


class _Broken:
    """Queue sentinel: the connection ended while the call waited."""

    def __init__(self, error: RoostError) -> None:
        self.error = error


def _disconnected(detail: str) -> AgentError:
    return AgentError(
        f"the workspace agent went away mid-call ({detail})",
        code="agent_disconnected",
        remedy=CHECK_WORKSPACE,
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
            code = str(frame.header.get("code", "protocol_error"))
            message = str(frame.header.get("message", "handshake refused"))
            if code == "unsupported_version":
                raise ProtocolError(
                    f"the workspace's agent does not speak this roost's protocol {list(PROTOCOL_VERSIONS)} ({message})",
                    code=code,
                    hint="restart the workspace, so that its agent runs this roost's code",
                )
            raise error_from_code(code, message, frame.header.get("hint") or None)
        if frame.kind is not Kind.HELLO:
            raise ProtocolError(f"expected HELLO from the agent, got {frame.kind.name}")
        if identity is not None:
            wrong = identity.check(nonce, frame.header)
            if wrong is not None:
                raise AgentError(
                    f"the agent that answered is not workspace {identity.workspace_id}'s: {wrong}",
                    code="agent_identity_mismatch",
                    remedy=CHECK_WORKSPACE,
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
            op = header.get("op")
            what = f"the arguments of {op} do not" if kind is Kind.REQUEST and op else f"a {kind.name} frame does not"
            raise ProtocolError(
                f"{what} fit in one frame ({exc})",
                code=exc.code,
                hint="pass large data as stdin or a file in the workspace, not as an argument",
            ) from None
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
    ) -> AgentReply:
        """Run one operation on the agent and wait for its answer.

        `upload` streams a request body in chunks (archives, large files,
        stdin); `on_data` receives streamed output as it arrives, otherwise
        it is collected into `AgentReply.streams`. `on_start(request_id)` is told
        the call's id once it is sent, so another thread can `cancel` it.

        Raises:
            RoostError: the agent's error for this call, translated by code.
            AgentError: agent_disconnected when the stream ends first.
        """
        rid, waiter = self._register()
        try:
            self._send(Kind.REQUEST, _request(rid, op, args, upload is not None), body)
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

    def _await(self, rid: int, waiter: queue.SimpleQueue[Frame | _Broken], on_data: OnData | None) -> AgentReply:
        collected: dict[str, list[bytes]] = {}
        while True:
            frame = _answer(rid, waiter.get())
            if frame.kind is Kind.DATA:
                channel = str(frame.header.get("ch", "data"))
                if on_data is not None:
                    on_data(channel, frame.body)
                else:
                    collected.setdefault(channel, []).append(frame.body)
            else:
                return AgentReply(_result(frame), frame.body, {ch: b"".join(parts) for ch, parts in collected.items()})

    def stream(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        upload: Iterable[bytes] | None = None,
        window: int = STREAM_WINDOW_BYTES,
    ) -> CallStream:
        """Start one operation whose DATA the caller takes frame by frame (see `CallStream`).

        An `upload` is sent whole before this returns, so only ops that read
        their upload to the end before they stream anything take one
        (`patch.apply`); any other would wait on a window nobody credits.

        Raises:
            RoostError: the connection is broken, or the request cannot be sent.
        """
        rid, waiter = self._register()
        try:
            self._send(Kind.REQUEST, {**_request(rid, op, args, upload is not None), "window": window})
            if upload is not None:
                self._upload(rid, upload)
        except BaseException:
            self._forget(rid)
            self.cancel(rid)
            raise
        return CallStream(self, rid, waiter, window)

    def _register(self) -> tuple[int, queue.SimpleQueue[Frame | _Broken]]:
        """A new request id and the queue its frames will arrive in."""
        if self._broken is not None:
            raise self._broken
        rid = next(self._ids)
        waiter: queue.SimpleQueue[Frame | _Broken] = queue.SimpleQueue()
        with self._pending_lock:
            self._pending[rid] = waiter
        return rid, waiter

    def _forget(self, rid: int) -> None:
        with self._pending_lock:
            self._pending.pop(rid, None)

    def _credit(self, rid: int, consumed: int) -> None:
        self._send(Kind.CREDIT, {"id": rid, "bytes": consumed})

    def cancel(self, rid: int) -> None:
        """Ask the agent to stop call `rid` (best effort)."""
        try:
            self._send(Kind.CANCEL, {"id": rid})
        except RoostError:
            pass


class CallStream:
    """One streamed call: its DATA frames as `(channel, body)` pairs, in order, as the caller takes them.

    The agent runs at most one window ahead: each frame taken is credited
    back once a quarter window has been. After the last frame, `result`
    holds the RESPONSE's result. `close()` (also on leaving a `with` block)
    cancels a call that has not finished and drops what it still sends.
    """

    def __init__(self, client: AgentClient, rid: int, waiter: queue.SimpleQueue[Frame | _Broken], window: int) -> None:
        self._client = client
        self._rid = rid
        self._waiter = waiter
        self._threshold = max(1, window // 4)
        self._uncredited = 0
        self._result: dict[str, Any] | None = None
        self._done = False

    def __iter__(self) -> CallStream:
        return self

    def __next__(self) -> tuple[str, bytes]:
        """Raises: RoostError: the agent's error for this call, or the connection's end."""
        if self._done:
            raise StopIteration
        try:
            item = self._waiter.get()
        except BaseException:  # interrupted while waiting: the agent must stop too
            self.close()
            raise
        try:
            frame = _answer(self._rid, item)
        except RoostError:  # the call is over, one way or another
            self._finish()
            raise
        if frame.kind is not Kind.DATA:
            self._result = _result(frame)
            self._finish()
            raise StopIteration
        self._uncredited += len(frame.body)
        if self._uncredited >= self._threshold:
            self._client._credit(self._rid, self._uncredited)
            self._uncredited = 0
        return str(frame.header.get("ch", "data")), frame.body

    @property
    def result(self) -> dict[str, Any]:
        """The call's result; only once every frame has been taken."""
        if self._result is None:
            raise RuntimeError("the stream has not been read to its end")
        return self._result

    def _finish(self) -> None:
        self._done = True
        self._client._forget(self._rid)

    def close(self) -> None:
        if not self._done:
            self._finish()
            self._client.cancel(self._rid)

    def __enter__(self) -> CallStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _request(rid: int, op: str, args: dict[str, Any] | None, upload: bool) -> dict[str, Any]:
    header: dict[str, Any] = {"id": rid, "op": op, "args": args or {}}
    if upload:
        header["upload"] = True
    return header


def _answer(rid: int, item: Frame | _Broken) -> Frame:
    """A DATA or RESPONSE frame of call `rid`.

    Raises:
        RoostError: the call's ERROR (by code), the connection's end, or a frame that has no place here.
    """
    if isinstance(item, _Broken):
        raise item.error
    if item.kind in (Kind.DATA, Kind.RESPONSE):
        return item
    if item.kind is Kind.ERROR:
        details = item.header.get("details")
        raise error_from_code(
            str(item.header.get("code", "agent_error")),
            str(item.header.get("message", "the agent reported an error")),
            item.header.get("hint") or None,
            details if isinstance(details, dict) else None,
        )
    raise ProtocolError(f"unexpected {item.kind.name} frame for request {rid}")


def _result(frame: Frame) -> dict[str, Any]:
    result = frame.header.get("result")
    return result if isinstance(result, dict) else {}
