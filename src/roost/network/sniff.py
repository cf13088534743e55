"""The server name a client's first bytes ask for: the SNI of a TLS ClientHello or an HTTP/1 Host header.

`server_name(data)` returns `Named(name)` when the bytes are a ClientHello
or an HTTP request naming a host, `Named(None)` when they are one of those
but name nothing usable (a ClientHello without SNI, a request without Host:
refused under allowlist since the name cannot be checked), and None when
they look like neither protocol (the flow is then judged by its address
only). Names come back normalised (`normalize_name`); a malformed name is
`Named("")`, which matches nothing.

Imports: roost.errors, roost.network.policy and the standard library.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from roost.errors import InvalidArgument
from roost.network.policy import normalize_name

__all__ = ["SNIFF_LIMIT", "Named", "is_client_hello", "is_complete", "server_name", "unfinished"]

# The most a client's first bytes are held to read a name: a TLS record's maximum and a header block.
SNIFF_LIMIT = 16_384 + 5

_METHODS = (b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE")
_HTTP_METHOD = re.compile(rb"^(" + b"|".join(_METHODS) + rb") \S+ HTTP/1\.[01]\r?\n")
_HOST_HEADER = re.compile(rb"^host:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_TLS_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_SNI_EXTENSION = 0x0000


@dataclass(frozen=True)
class Named:
    """What the first bytes named: a normalised host name, "" for a malformed one, None for none."""

    name: str | None


def server_name(data: bytes) -> Named | None:
    """The name `data` (a client's first bytes) asks for, or None when it is neither TLS nor HTTP."""
    if is_client_hello(data):
        return Named(_normalised(_client_hello_sni(data)))
    if _HTTP_METHOD.match(data):
        match = _HOST_HEADER.search(data)
        return Named(_normalised(_strip_port(match.group(1).strip().decode("latin-1")) if match else None))
    return None


def unfinished(data: bytes) -> bool:
    """Whether `data` began a TLS record or an HTTP request line but stopped before naming a host
    (judged as naming none: a client must not pause to slip a foreign name past the check)."""
    return bool(data) and not is_complete(data)


def is_client_hello(data: bytes) -> bool:
    """Whether `data` begins as a TLS ClientHello."""
    return len(data) >= 6 and data[0] == _TLS_HANDSHAKE and data[5] == _CLIENT_HELLO


def is_complete(data: bytes) -> bool:
    """Whether `data` holds enough to judge: a whole first TLS record or HTTP header block, or neither protocol."""
    if len(data) >= SNIFF_LIMIT:
        return True
    if data[:1] == bytes([_TLS_HANDSHAKE]):
        return len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big")
    if _HTTP_METHOD.match(data):
        return b"\r\n\r\n" in data or b"\n\n" in data
    return b"\n" in data or not _could_be_request_line(data)


def _could_be_request_line(data: bytes) -> bool:
    head, space, _ = data.partition(b" ")
    return head in _METHODS if space else any(method.startswith(head) for method in _METHODS)


def _normalised(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ipaddress.ip_address(name)
        return name  # a literal address: kept as written, it matches no resolved name
    except ValueError:
        pass
    try:
        return normalize_name(name)
    except InvalidArgument:
        return ""


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _client_hello_sni(data: bytes) -> str | None:
    """The server_name extension of a ClientHello in one TLS record (None: absent or cut short)."""
    record_end = min(len(data), 5 + int.from_bytes(data[3:5], "big"))
    position = 5 + 4 + 2 + 32  # record header, handshake header, version, random
    try:
        session_length = data[position]
        position += 1 + session_length
        suites_length = int.from_bytes(data[position : position + 2], "big")
        position += 2 + suites_length
        compression_length = data[position]
        position += 1 + compression_length
        extensions_end = min(record_end, position + 2 + int.from_bytes(data[position : position + 2], "big"))
        position += 2
        while position + 4 <= extensions_end:
            kind = int.from_bytes(data[position : position + 2], "big")
            length = int.from_bytes(data[position + 2 : position + 4], "big")
            body = data[position + 4 : position + 4 + length]
            if kind == _SNI_EXTENSION:
                return _sni_host(body)
            position += 4 + length
    except IndexError:
        return None
    return None


def _sni_host(body: bytes) -> str | None:
    # server_name_list: u16 length, then entries of (u8 type, u16 length, name); type 0 is host_name.
    position = 2
    while position + 3 <= len(body):
        kind = body[position]
        length = int.from_bytes(body[position + 1 : position + 3], "big")
        if kind == 0:
            return body[position + 3 : position + 3 + length].decode("ascii", errors="replace")
        position += 3 + length
    return None
