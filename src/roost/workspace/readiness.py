"""Readiness probes as data: `Readiness`, checked whole before a service starts.

A probe that can never pass (a port out of range, an `ftp://` URL, a file
outside /workspace) is refused here, as `invalid_argument`, instead of
surfacing as a `failed` service once the ready timeout has run out.

Imports: arguments, errors, protocol (the readiness message), workspace.op_args and the standard library only.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import urllib.parse
from dataclasses import dataclass

from roost import arguments
from roost.errors import InvalidArgument
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.services import ReadinessProbe
from roost.workspace.op_args import checked_args

URL_SCHEMES = ("http", "https")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?")
_PROBE_HINT = "pick one readiness probe: a file, a TCP address, an HTTP URL or a command"


@dataclass(frozen=True)
class Readiness:
    """Exactly one of file/tcp/http/command, with how long and how often to probe.

    `file`: a path that appears (relative to the service's cwd, and within
    /workspace); `tcp`: `[host:]port`; `http`: an http:// or https:// URL
    (`http://` when no scheme is given); `command`: a shell command that
    exits 0. `timeout_s`: above 0, at most 3600; `interval_ms`: 10 to 60000.
    """

    file: str | None = None
    tcp: str | None = None
    http: str | None = None
    command: str | None = None
    timeout_s: float = 30.0
    interval_ms: int = 100

    def to_probe(self, cwd: str | None = None) -> ReadinessProbe | None:
        """The agent's `ready` argument (None: no probe), for a service running in `cwd`.

        Raises:
            InvalidArgument: two probes, or a probe, timeout or interval that cannot work.
        """
        timeout = arguments.seconds(self.timeout_s, "ready timeout", arguments.MAX_READY_TIMEOUT_S, example=30)
        interval = arguments.whole_number(
            self.interval_ms,
            "ready interval",
            arguments.MIN_READY_INTERVAL_MS,
            arguments.MAX_READY_INTERVAL_MS,
            unit="milliseconds",
            example=100,
        )
        given = {
            kind: target
            for kind, target in (("file", self.file), ("tcp", self.tcp), ("http", self.http), ("command", self.command))
            if target is not None
        }
        if not given:
            return None
        if len(given) > 1:
            raise InvalidArgument(f"give one readiness probe, not {len(given)} ({', '.join(given)})", hint=_PROBE_HINT)
        kind, target = next(iter(given.items()))
        if not isinstance(target, str) or not target.strip():
            raise InvalidArgument(f"the {kind} readiness probe needs a non-empty target", hint=_PROBE_HINT)
        if "\0" in target:
            raise InvalidArgument(f"the {kind} readiness probe contains a NUL byte", hint="remove the NUL byte")
        if kind == "file":
            ready_file(target, cwd)
        elif kind == "tcp":
            ready_tcp(target)
        elif kind == "http":
            ready_http(target)
        with checked_args():
            return ReadinessProbe(self.file, self.tcp, self.http, self.command, timeout, interval / 1000)


def ready_file(target: str, cwd: str | None) -> str:
    """Raises: InvalidArgument: the path (relative ones from `cwd`) leaves /workspace."""
    base = cwd if cwd is not None and cwd.startswith("/") else posixpath.join(GUEST_ROOT, cwd or "")
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved != GUEST_ROOT and not resolved.startswith(GUEST_ROOT + "/"):
        raise InvalidArgument(
            f"the ready file {target!r} is outside {GUEST_ROOT} (it would be {resolved})",
            code="path_outside_workspace",
            hint=f"give a path under {GUEST_ROOT}, or one relative to the service's cwd",
        )
    return target


def ready_tcp(target: str) -> str:
    """`PORT` or `HOST:PORT` (an IPv6 host in brackets: `[::1]:8000`).

    Raises:
        InvalidArgument: a port outside 1..65535 or a malformed host.
    """
    host, sep, port = target.rpartition(":")
    if sep and not _valid_host(host):
        raise InvalidArgument(
            f"bad host {host!r} in the tcp readiness probe {target!r}",
            hint="give [HOST:]PORT, e.g. 8000 or 127.0.0.1:8000 or [::1]:8000",
        )
    if not port.isdecimal() or not port.isascii():
        raise InvalidArgument(
            f"bad port {port!r} in the tcp readiness probe {target!r}",
            hint="give [HOST:]PORT with a port from 1 to 65535, e.g. 8000",
        )
    arguments.port(int(port), "the tcp readiness port")
    return target


def ready_http(target: str) -> str:
    """Raises: InvalidArgument: not an http(s) URL with a valid host and port."""
    hint = "give an http:// or https:// URL, e.g. http://127.0.0.1:8000/health"
    try:
        url = urllib.parse.urlsplit(target if "://" in target else f"http://{target}")
    except ValueError:  # an unclosed IPv6 bracket
        raise InvalidArgument(f"the readiness URL {target!r} is malformed", hint=hint) from None
    if url.scheme not in URL_SCHEMES:
        raise InvalidArgument(f"the http readiness probe needs an http or https URL, not {target!r}", hint=hint)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        raise InvalidArgument(f"the readiness URL {target!r} contains spaces or control characters", hint=hint)
    host = url.hostname
    if not host or not _valid_host(f"[{host}]" if ":" in host else host):
        raise InvalidArgument(f"the readiness URL {target!r} has no valid host", hint=hint)
    try:
        url_port = url.port
    except ValueError:
        url_port = 0
    if url_port == 0:
        raise InvalidArgument(f"the readiness URL {target!r} has a bad port", hint="use a port from 1 to 65535")
    return target


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    return bool(_HOSTNAME.fullmatch(host))
