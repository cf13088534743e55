"""What an operation handler sees of its request: arguments, body, upload, output.

Handlers are plain functions ``handler(agent, args, ctx) -> HandlerResult``:
`args` is the op's argument message (`roost.protocol.ops`), decoded and
checked by the op table before the handler runs. They never touch the
connection: they read `ctx.body`/`ctx.upload()`, stream with
`ctx.send(channel, data)`, watch `ctx.cancelled`, and return a
`HandlerResult` holding the op's result message, or raise `OpError`.

Imports: protocol and the standard library only.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roost.protocol import Code, OpError

if TYPE_CHECKING:  # the agent loads message classes with the first request, not at start
    from roost.protocol.ops.message import Message


@dataclass(frozen=True)
class HandlerResult:
    """What a handler returns: its op's result message (`roost.protocol.ops`), an optional body and,
    optionally, work that need not delay the answer (saving a cache): run once the reply is sent."""

    result: Message
    body: bytes = b""
    after: Callable[[], None] | None = None

    def wire_result(self) -> dict[str, Any]:
        """The result as the RESPONSE carries it."""
        return self.result.to_wire()


class UploadBuffer:
    """A bounded hand-off of upload chunks from the connection reader to a handler.

    The reader blocks while the buffer is full (backpressure to the host).
    When the handler finishes early, `discard()` wakes the reader and drops
    whatever else arrives for this request, so a failed handler never
    deadlocks its connection.
    """

    def __init__(self, max_chunks: int = 32) -> None:
        self._chunks: deque[bytes] = deque()
        self._max = max_chunks
        self._ended = False
        self._discarding = False
        self._cond = threading.Condition()

    def put(self, chunk: bytes) -> None:
        with self._cond:
            while len(self._chunks) >= self._max and not self._discarding:
                self._cond.wait()
            if not self._discarding:
                self._chunks.append(chunk)
                self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def discard(self) -> None:
        with self._cond:
            self._discarding = True
            self._chunks.clear()
            self._cond.notify_all()

    def chunks(self, cancelled: threading.Event) -> Iterator[bytes]:
        """Yield chunks until END; raise OpError if the call is cancelled first."""
        while True:
            with self._cond:
                while not self._chunks and not self._ended and not cancelled.is_set():
                    self._cond.wait(0.5)
                if self._chunks:
                    chunk = self._chunks.popleft()
                    self._cond.notify_all()
                elif self._ended:
                    return
                else:
                    raise OpError(Code.CANCELLED, "upload cancelled before it ended")
            yield chunk


class RequestContext:
    """One in-flight request as its handler sees it."""

    def __init__(
        self,
        request_id: int,
        op: str,
        args: dict[str, Any],
        body: bytes,
        send: Callable[[str, bytes], None],
        upload: UploadBuffer | None,
        cancelled: threading.Event,
    ) -> None:
        self.request_id = request_id
        self.op = op
        self.args = args  # as the wire had them: the op table decodes them into the op's message
        self.body = body
        self.cancelled = cancelled
        self._send = send
        self._upload = upload

    @property
    def has_upload(self) -> bool:
        return self._upload is not None

    def upload(self) -> Iterator[bytes]:
        """The request's streamed body; just `body` when nothing was streamed."""
        if self._upload is None:
            if self.body:
                yield self.body
            return
        yield from self._upload.chunks(self.cancelled)

    def send(self, channel: str, data: bytes) -> None:
        """Stream `data` to the host on `channel` (split into frame-sized pieces)."""
        self._send(channel, data)


def command_argv(argv: Sequence[str] | None, command: str | None) -> list[str]:
    """What to run, as an argv: `argv` itself, or the script `command` for bash where the workspace has it, else sh.

    The op's message has checked that exactly one is given.
    """
    return list(argv) if argv is not None else [_shell(), "-c", str(command)]


def _shell() -> str:
    """bash where the workspace has it, else sh."""
    import shutil  # imported here: shutil pulls in bz2 and lzma, which an idle agent never needs

    return shutil.which("bash") or "/bin/sh"
