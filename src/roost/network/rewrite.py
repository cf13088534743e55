"""Putting secrets in place of their placeholders in the HTTP/1.x requests a connection carries.

`RequestRewriter.feed(data)` takes what the client sent (any split across
reads) and returns what goes upstream. Every request on the connection
(keep-alive, pipelined) is rewritten: in header values, each placeholder of
a secret that may go to the request's host becomes the secret's value;
with `in_body`, a body with a Content-Length is held whole (up to
MAX_BODY), rewritten too and its Content-Length fixed. A placeholder of a
secret that may not go there is left as it is and reported once per request
(`on_foreign`). Chunked bodies pass untouched (their framing is followed to
find the next request); so does everything after an Upgrade or CONNECT, a
header block over MAX_HEAD, or a body over MAX_BODY.

Which host a request goes to is the caller's word (`identity`): the name a
verified TLS certificate holds, or for plain HTTP the Host header when the
address was resolved for it. Nothing here raises on what a client sends,
and nothing a client sends ends up in an exception message.

Imports: roost.network.sniff, roost.network.substitution and the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from roost.network.sniff import server_name
from roost.network.substitution import Substitution

__all__ = ["MAX_BODY", "MAX_HEAD", "RequestRewriter"]

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_MAX_CHUNK_LINE = 4096

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_CHUNKED = re.compile(rb"^transfer-encoding:[^\r\n]*chunked", re.IGNORECASE | re.MULTILINE)
_UPGRADE = re.compile(rb"^upgrade:", re.IGNORECASE | re.MULTILINE)

Identity = Callable[[str | None], str | None]
OnForeign = Callable[[Substitution, str | None], None]


class RequestRewriter:
    """One connection's client-to-server bytes, rewritten request by request."""

    def __init__(self, substitutions: Sequence[Substitution], identity: Identity, on_foreign: OnForeign) -> None:
        self._substitutions = tuple(substitutions)
        self._identity = identity
        self._on_foreign = on_foreign
        self._buffer = b""
        self._state = "head"
        self._remaining = 0  # body bytes left ("length"), or chunk bytes left ("chunk_data")
        self._held_head = b""  # a head waiting for its body ("held_body")
        self._request_host: str | None = None

    def feed(self, data: bytes) -> bytes:
        """What goes upstream for `data` (maybe less: the rest once it is whole)."""
        self._buffer += data
        out: list[bytes] = []
        while self._buffer:
            before = (self._state, len(self._buffer))
            out.append(self._step())
            if (self._state, len(self._buffer)) == before:
                break  # needs more bytes
        return b"".join(out)

    def _step(self) -> bytes:
        if self._state == "raw":
            return self._take(len(self._buffer))
        if self._state == "head":
            return self._head()
        if self._state == "length":
            return self._take(min(self._remaining, len(self._buffer)), count=True)
        if self._state == "held_body":
            return self._held_body()
        return self._chunked()

    def _take(self, size: int, *, count: bool = False) -> bytes:
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        if count:
            self._remaining -= size
            if self._remaining == 0:
                self._state = "head"
        return taken

    def _head(self) -> bytes:
        end = _HEAD_END.search(self._buffer, 0, MAX_HEAD + 4)
        if end is None:
            if len(self._buffer) > MAX_HEAD:
                self._state = "raw"
            return b""
        head, self._buffer = self._buffer[: end.end()], self._buffer[end.end() :]
        named = server_name(head)
        self._request_host = named.name if named is not None else None
        identity = self._identity(self._request_host)
        request_line, _, headers = head.partition(b"\n")
        headers = self._substitute(headers, identity, body=False)
        head = request_line + b"\n" + headers
        return self._frame(head, identity)

    def _frame(self, head: bytes, identity: str | None) -> bytes:
        """Choose how the request's body is read; the head, unless it waits for its body."""
        method = head.split(b" ", 1)[0]
        if method == b"CONNECT" or _UPGRADE.search(head):
            self._state = "raw"
        elif _CHUNKED.search(head):
            self._state = "chunk_size"
        else:
            length = _CONTENT_LENGTH.search(head)
            self._remaining = int(length.group(1)) if length else 0
            wants_body = any(item.in_body and item.goes_to(identity) for item in self._substitutions)
            if self._remaining and wants_body and self._remaining <= MAX_BODY:
                self._state, self._held_head = "held_body", head
                return b""
            self._state = "length" if self._remaining else "head"
        return head

    def _held_body(self) -> bytes:
        if len(self._buffer) < self._remaining:
            return b""
        body, self._buffer = self._buffer[: self._remaining], self._buffer[self._remaining :]
        body = self._substitute(body, self._identity(self._request_host), body=True)
        head = _CONTENT_LENGTH.sub(lambda m: m.group(0).replace(m.group(1), str(len(body)).encode()), self._held_head)
        self._state, self._held_head, self._remaining = "head", b"", 0
        return head + body

    def _chunked(self) -> bytes:
        if self._state == "chunk_data":
            return self._take_chunk()
        newline = self._buffer.find(b"\n")
        if newline < 0:
            if len(self._buffer) > _MAX_CHUNK_LINE:
                self._state = "raw"
            return b""
        line = self._buffer[: newline + 1]
        if self._state == "chunk_trailer":
            if line.strip() == b"":
                self._state = "head"
            return self._take(len(line))
        size = _chunk_size(line)
        if size is None:
            self._state = "raw"
        elif size == 0:
            self._state = "chunk_trailer"
        else:
            self._state, self._remaining = "chunk_data", size + 2  # the data and its CRLF
        return self._take(len(line))

    def _take_chunk(self) -> bytes:
        size = min(self._remaining, len(self._buffer))
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        self._remaining -= size
        if self._remaining == 0:
            self._state = "chunk_size"
        return taken

    def _substitute(self, data: bytes, identity: str | None, *, body: bool) -> bytes:
        for item in self._substitutions:
            if item.marker not in data:
                continue
            if item.goes_to(identity) and (item.in_body or not body):
                data = data.replace(item.marker, item.value)
            elif not item.goes_to(identity):
                self._on_foreign(item, identity or self._request_host)
        return data


def _chunk_size(line: bytes) -> int | None:
    text = line.split(b";", 1)[0].strip()
    if not text or len(text) > 16 or any(byte not in b"0123456789abcdefABCDEF" for byte in text):
        return None
    return int(text, 16)
