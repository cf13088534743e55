"""The agent's connection loop: handshake, dispatch, multiplexing.

One `Connection` per byte stream. Its reader thread decodes frames; each
REQUEST runs in a thread of its own (the agent's `Workers`) so a long exec
never blocks a file read on the same connection. Writers share one lock, so frames from different
requests interleave whole. When the stream ends, every call still running
on it is cancelled (execs are killed), so a host that dies leaves no work
behind.

Imports: protocol, the op table, the request core and the standard library only.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from roost.agent.context import RequestContext, UploadBuffer
from roost.agent.ops import OpTable
from roost.protocol import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Code,
    Frame,
    FrameError,
    Kind,
    OpError,
    choose_version,
    read_frame,
    write_frame,
)
from roost.protocol.identity import NONCE_MAX
from roost.protocol.messages import DATA_CHUNK_BYTES

log = logging.getLogger("roost.agent")

AGENT_VERSION = "0.1.0"
# A sender waiting for CREDIT is woken by credit, cancel or close; this only bounds a missed wake-up.
CREDIT_WAIT_S = 1.0


class ByteStream(Protocol):
    def recv_into(self, buffer: memoryview) -> int: ...
    def sendall(self, data: bytes) -> object: ...
    def close(self) -> None: ...


class SendWindow:
    """How far one call's DATA may run ahead of the host: `size` bytes unacknowledged, then wait for CREDIT.

    A frame is always let through when nothing is in flight, so a window
    smaller than one frame slows a call down but never stalls it.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closed = False

    def acquire(self, n: int, cancelled: threading.Event) -> None:
        """Raises: OpError: cancelled.  OSError: the connection closed while waiting."""
        with self._cond:
            while self._in_flight and self._in_flight + n > self._size:
                if cancelled.is_set():
                    raise OpError(Code.CANCELLED, "call cancelled")
                if self._closed:
                    raise OSError("connection closed")
                self._cond.wait(CREDIT_WAIT_S)
            self._in_flight += n

    def release(self, n: int) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - n)
            self._cond.notify_all()

    def wake(self, *, closed: bool = False) -> None:
        """Let a waiting sender look again (it was cancelled, or the connection closed)."""
        with self._cond:
            self._closed = self._closed or closed
            self._cond.notify_all()


class Connection:
    """Serves one byte stream until it ends or breaks."""

    def __init__(self, stream: ByteStream, ops: OpTable, info: dict[str, Any]) -> None:
        self._stream = stream
        self._ops = ops
        self._info = info
        self._send_lock = threading.Lock()
        self._calls_lock = threading.Lock()
        self._cancels: dict[int, threading.Event] = {}
        self._uploads: dict[int, UploadBuffer] = {}
        self._windows: dict[int, SendWindow] = {}
        self._closed = False

    # -- writing -------------------------------------------------------------
    def _write(self, kind: Kind, header: dict[str, Any], body: bytes = b"") -> None:
        with self._send_lock:
            if self._closed:
                raise OSError("connection closed")
            write_frame(self._stream.sendall, kind, header, body)

    def _sender(
        self, request_id: int, cancelled: threading.Event, window: SendWindow | None
    ) -> Callable[[str, bytes], None]:
        def send(channel: str, data: bytes) -> None:
            view = memoryview(data)
            for start in range(0, len(view), DATA_CHUNK_BYTES):
                if cancelled.is_set():
                    raise OpError(Code.CANCELLED, "call cancelled")
                piece = bytes(view[start : start + DATA_CHUNK_BYTES])
                if window is not None:
                    window.acquire(len(piece), cancelled)
                self._write(Kind.DATA, {"id": request_id, "ch": channel}, piece)

        return send

    # -- reading -------------------------------------------------------------
    def serve(self) -> None:
        try:
            if not self._handshake():
                return
            while True:
                frame = read_frame(self._stream.recv_into)
                if frame is None:
                    return
                self._route(frame)
        except FrameError as exc:
            self._try_write(Kind.ERROR, {"id": 0, "code": exc.code, "message": str(exc), "hint": ""})
        except OSError as exc:
            log.debug("connection ended: %s", exc)
        finally:
            self._shutdown()

    def _handshake(self) -> bool:
        frame = read_frame(self._stream.recv_into)
        if frame is None:
            return False
        if frame.kind is not Kind.HELLO:
            self._try_write(
                Kind.ERROR,
                {"id": 0, "code": Code.PROTOCOL_ERROR, "message": "expected HELLO first", "hint": ""},
            )
            return False
        version = choose_version(frame.header.get("versions"))
        if version is None:
            self._try_write(
                Kind.ERROR,
                {
                    "id": 0,
                    "code": Code.UNSUPPORTED_VERSION,
                    "message": f"no common protocol version in {frame.header.get('versions')!r}",
                    "hint": "upgrade roost on the host or rebuild the workspace image",
                },
            )
            return False
        hello = dict(self._info)
        hello.update(
            version=version,
            ops=sorted(self._ops.names()),
            limits={"max_body": MAX_BODY_BYTES, "max_header": MAX_HEADER_BYTES, "data_chunk": DATA_CHUNK_BYTES},
        )
        identity = self._ops.agent.identity
        nonce = frame.header.get("nonce")
        if identity is not None and isinstance(nonce, str) and 0 < len(nonce) <= NONCE_MAX:
            hello.update(workspace_id=identity.workspace_id, proof=identity.prove(nonce))
        self._write(Kind.HELLO, hello)
        self._ops.warm_up()  # the host's first request is on its way: load what it will ask for
        return True

    def _route(self, frame: Frame) -> None:
        rid = frame.request_id
        if frame.kind is Kind.REQUEST:
            self._start(frame)
        elif frame.kind is Kind.DATA:
            upload = self._uploads.get(rid)
            if upload is not None:
                upload.put(frame.body)
        elif frame.kind is Kind.END:
            upload = self._uploads.get(rid)
            if upload is not None:
                upload.end()
        elif frame.kind is Kind.CREDIT:
            window = self._windows.get(rid)
            granted = frame.header.get("bytes")
            if isinstance(granted, int) and not isinstance(granted, bool) and window is not None:
                window.release(granted)
        elif frame.kind is Kind.CANCEL:
            event = self._cancels.get(rid)
            if event is not None:
                event.set()
            window = self._windows.get(rid)
            if window is not None:
                window.wake()
        else:
            raise FrameError(f"unexpected {frame.kind.name} frame from the host")

    def _start(self, frame: Frame) -> None:
        rid = frame.request_id
        op = frame.header.get("op")
        args = frame.header.get("args") or {}
        size = frame.header.get("window")
        if rid <= 0 or not isinstance(op, str) or not isinstance(args, dict):
            raise FrameError("REQUEST needs a positive id, an op name and an args object")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise FrameError("a REQUEST's window must be a positive number of bytes")
        with self._calls_lock:
            if rid in self._cancels:
                raise FrameError(f"request id {rid} is already in flight")
            upload = UploadBuffer() if frame.header.get("upload") else None
            window = SendWindow(size) if size is not None else None
            cancelled = threading.Event()
            ctx = RequestContext(rid, op, args, frame.body, self._sender(rid, cancelled, window), upload, cancelled)
            self._cancels[rid] = cancelled
            if upload is not None:
                self._uploads[rid] = upload
            if window is not None:
                self._windows[rid] = window
        self._ops.agent.workers.submit(lambda: self._run(ctx, upload), name=f"op-{op}-{rid}")

    def _run(self, ctx: RequestContext, upload: UploadBuffer | None) -> None:
        rid = ctx.request_id
        inflight = self._ops.agent.inflight
        inflight.add(ctx.cancelled)
        after: Callable[[], None] | None = None
        try:
            reply = self._ops.call(ctx)
            after = reply.after
            self._try_write(
                Kind.RESPONSE, {"id": rid, "result": reply.wire_result()}, reply.body, what=f"the result of {ctx.op}"
            )
        except OpError as exc:
            self._try_write(Kind.ERROR, exc.to_header(rid))
        except Exception as exc:  # a bug in an op must not take the agent down
            log.exception("op %s failed", ctx.op)
            self._try_write(
                Kind.ERROR,
                {"id": rid, "code": Code.INTERNAL, "message": f"{ctx.op}: {type(exc).__name__}: {exc}", "hint": ""},
            )
        finally:
            if upload is not None:
                upload.discard()
            with self._calls_lock:
                self._cancels.pop(rid, None)
                self._uploads.pop(rid, None)
                self._windows.pop(rid, None)
            if after is not None:  # answered: what is left may take its time (shutdown still waits for it)
                _after_reply(ctx.op, after)
            inflight.remove(ctx.cancelled)

    def _try_write(self, kind: Kind, header: dict[str, Any], body: bytes = b"", *, what: str = "a reply") -> None:
        try:
            self._write(kind, header, body)
        except FrameError as exc:
            # The reply itself broke a limit: say what, instead of going silent.
            rid = header.get("id", 0)
            message = f"{what} does not fit in one frame ({exc})"
            hint = "results that grow with the workspace stream as records; this one did not: please report it"
            self._try_write(Kind.ERROR, {"id": rid, "code": exc.code, "message": message, "hint": hint})
        except OSError:
            pass

    def _shutdown(self) -> None:
        with self._send_lock:
            self._closed = True
        with self._calls_lock:
            for event in self._cancels.values():
                event.set()
            for upload in self._uploads.values():
                upload.discard()
            for window in self._windows.values():
                window.wake(closed=True)
        try:
            self._stream.close()
        except OSError:
            pass


def agent_info() -> dict[str, Any]:
    return {"agent": AGENT_VERSION, "pid": os.getpid(), "workspace": "/workspace"}


def _after_reply(op: str, work: Callable[[], None]) -> None:
    try:
        work()
    except Exception:  # the answer is gone already: a failure here is logged, never sent
        log.exception("after answering %s", op)
