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
from dataclasses import dataclass, field
from typing import Any

from roost.protocol import Code, OpError
from roost.protocol.names import NameFormError, from_text
from roost.protocol.ops.message import Message


@dataclass(frozen=True)
class HandlerResult:
    """What a handler returns: its op's result message (`roost.protocol.ops`) and an optional body."""

    result: Message | dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    def wire_result(self) -> dict[str, Any]:
        """The result as the RESPONSE carries it."""
        return self.result.to_wire() if isinstance(self.result, Message) else self.result


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
        self.args = args
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

    # Typed argument access: a wrong type is the caller's error, reported as such.
    def arg_str(self, name: str, default: str | None = None) -> str:
        value = self.args.get(name, default)
        if not isinstance(value, str):
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must be a string")
        return value

    def arg_opt_str(self, name: str) -> str | None:
        value = self.args.get(name)
        if value is not None and not isinstance(value, str):
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must be a string")
        return value

    def arg_path(self, name: str, default: str | None = None) -> str:
        """A path argument in its text form (`roost.protocol.names`), as the native name it stands for."""
        return _native_path(name, self.arg_str(name, default))

    def arg_paths(self, name: str) -> list[str]:
        """A list of path arguments (absent: empty), each as the native name it stands for."""
        value = self.args.get(name) or []
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must be a list of paths")
        return [_native_path(name, p) for p in value]

    def arg_opt_int(self, name: str, *, minimum: int = 0) -> int | None:
        value = self.args.get(name)
        if value is None:
            return None
        return self.arg_int(name, minimum, minimum=minimum)

    def arg_int(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.args.get(name, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must be an integer >= {minimum}")
        return value

    def arg_opt_float(self, name: str) -> float | None:
        value = self.args.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must be a positive number")
        return float(value)

    def arg_bool(self, name: str, default: bool = False) -> bool:
        value = self.args.get(name, default)
        if not isinstance(value, bool):
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must be true or false")
        return value

    def arg_command(self) -> list[str]:
        """What to run, as an argv: `argv` (a list) or `command` (a shell string for bash, else sh); exactly one."""
        argv = self.args.get("argv")
        command = self.args.get("command")
        if (argv is None) == (command is None):
            raise OpError(Code.INVALID_ARGUMENT, "give exactly one of 'argv' (a list) or 'command' (a shell string)")
        if command is not None:
            if not isinstance(command, str) or not command.strip():
                raise OpError(Code.INVALID_ARGUMENT, "'command' must be a non-empty string")
            argv = [_shell(), "-c", command]
        elif not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise OpError(Code.INVALID_ARGUMENT, "'argv' must be a non-empty list of strings")
        if any("\0" in a for a in argv):
            raise OpError(Code.INVALID_ARGUMENT, "arguments may not contain NUL bytes")
        return list(argv)

    def arg_str_map(self, name: str) -> dict[str, str]:
        value = self.args.get(name) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise OpError(Code.INVALID_ARGUMENT, f"argument {name!r} must map strings to strings")
        return dict(value)


def _native_path(name: str, text: str) -> str:
    try:
        return from_text(text)
    except NameFormError as exc:
        raise OpError(
            Code.INVALID_ARGUMENT, f"argument {name!r}: {exc}", hint="quote names as roost lists them"
        ) from None


def command_argv(argv: Sequence[str] | None, command: str | None) -> list[str]:
    """What to run, as an argv: `argv` itself, or the script `command` for bash where the workspace has it, else sh.

    The op's message has checked that exactly one is given.
    """
    return list(argv) if argv is not None else [_shell(), "-c", str(command)]


def _shell() -> str:
    """bash where the workspace has it, else sh."""
    import shutil  # imported here: shutil pulls in bz2 and lzma, which an idle agent never needs

    return shutil.which("bash") or "/bin/sh"
