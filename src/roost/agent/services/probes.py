"""Readiness probes: one attempt of each kind, answering (ready, why not).

`file`: a path exists (relative paths are under the service's cwd). `tcp`: a
connection to [host:]port succeeds (host defaults to 127.0.0.1). `http`:
GET answers 2xx or 3xx. `command`: a shell command exits 0. Every attempt
is bounded by its own short timeout so a probe never hangs the supervisor.

Imports: the agent's `fs` layer, this package, protocol and the standard library only.
"""

from __future__ import annotations

import http.client
import posixpath
import socket
import subprocess
import urllib.parse

from roost.agent.fs.dirfd import fd_path
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.services.model import ProbeSpec
from roost.protocol import OpError

ATTEMPT_TIMEOUT_S = 2.0


def _file(paths: WorkspacePaths, target: str, cwd: str) -> tuple[bool, str]:
    try:
        exists = paths.exists(target if target.startswith("/") else posixpath.join(cwd, target))
    except OpError as exc:
        return False, exc.message
    return (True, "") if exists else (False, f"{target} does not exist yet")


def _tcp(target: str) -> tuple[bool, str]:
    host, _, port = target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 address, bracketed so its colons are not the port's
    try:
        number = int(port)
    except ValueError:
        return False, f"bad tcp target {target!r}: expected [host:]port"
    try:
        with socket.create_connection((host or "127.0.0.1", number), timeout=ATTEMPT_TIMEOUT_S):
            return True, ""
    except OSError as exc:
        return False, f"tcp {host or '127.0.0.1'}:{number}: {exc.strerror or exc}"


def _http(target: str) -> tuple[bool, str]:
    url = urllib.parse.urlsplit(target if "://" in target else f"http://{target}")
    if url.scheme not in ("http", "https"):
        return False, f"bad http target {target!r}"
    conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(url.hostname or "127.0.0.1", url.port, timeout=ATTEMPT_TIMEOUT_S)
    try:
        conn.request("GET", (url.path or "/") + (f"?{url.query}" if url.query else ""))
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"GET {target}: {exc}"
    finally:
        conn.close()
    return (True, "") if 200 <= status < 400 else (False, f"GET {target} answered {status}")


def _command(target: str, paths: WorkspacePaths, cwd: str, env: dict[str, str]) -> tuple[bool, str]:
    try:
        with paths.directory(cwd) as where:
            result = _run_probe(target, fd_path(where.fd), env)
    except OpError as exc:
        return False, exc.message
    except subprocess.TimeoutExpired:
        return False, f"probe command did not finish in {ATTEMPT_TIMEOUT_S:.0f}s"
    except OSError as exc:
        return False, f"probe command failed to start: {exc.strerror}"
    return (True, "") if result.returncode == 0 else (False, f"probe command exited {result.returncode}")


def _run_probe(target: str, cwd: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["/bin/sh", "-c", target],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=ATTEMPT_TIMEOUT_S,
        start_new_session=True,
        check=False,
    )


def attempt(probe: ProbeSpec, paths: WorkspacePaths, cwd: str, env: dict[str, str]) -> tuple[bool, str]:
    """One try of `probe`; `cwd` is the service's working directory as the workspace names it."""
    if probe.kind == "file":
        return _file(paths, probe.target, cwd)
    if probe.kind == "tcp":
        return _tcp(probe.target)
    if probe.kind == "http":
        return _http(probe.target)
    return _command(probe.target, paths, cwd, env)
