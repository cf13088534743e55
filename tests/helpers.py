"""Small helpers shared by the test suites: deadline waits, process probes and workspace teardown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from roost import Roost

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.005, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; return that value.

    Raises:
        AssertionError: the deadline passed first (naming `what`).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate!r}")
        time.sleep(interval)


def process_state(pid: int) -> str | None:
    """The one-letter /proc state of `pid`, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split(b" ", 1)[0].decode() or None


def pid_alive(pid: int) -> bool:
    """True for a running process; zombies (killed, not yet reaped) count as dead."""
    return process_state(pid) not in (None, "Z", "X")


def read_pids(path: os.PathLike[str] | str) -> list[int]:
    """Integers written one per line to `path` (empty when it does not exist yet)."""
    try:
        with open(path) as fh:
            return [int(line) for line in fh.read().split() if line.strip()]
    except FileNotFoundError:
        return []


def pids_with_env(name: str, value: str) -> set[int]:
    """Every process whose environment holds `name=value` (readable ones only)."""
    needle = f"{name}={value}".encode() + b"\0"
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read() + b"\0"
        except OSError:
            continue
        if needle in environ and pid_alive(int(entry)):
            found.add(int(entry))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [part.decode(errors="replace") for part in fh.read().split(b"\0") if part]
    except OSError:
        return []


def start_agent_process(tmp_path: Path, name: str, timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """A real agent process on `<tmp_path>/<name>.sock`, over `ws/` and `state/` in `tmp_path` (shared by restarts)."""
    sock_path = str(tmp_path / f"{name}.sock")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "ws"), "LANG": "C.UTF-8"}
    where = ["--workspace-root", str(tmp_path / "ws"), "--state-dir", str(tmp_path / "state")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.agent", "--listen", f"unix:{sock_path}", *where],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wait_until(lambda: os.path.exists(sock_path) or proc.poll() is not None, timeout=timeout)
    assert proc.poll() is None, "the agent did not start"
    return proc, sock_path


def delete_all_workspaces(client: Roost) -> None:
    """Delete every workspace under the client's home, half-made or corrupt ones too, processes included.

    For teardown: a workspace that cannot be deleted is left for the temp dir's removal.
    """
    from roost import RoostError

    workspaces = client.home / "workspaces"
    for ws_dir in sorted(workspaces.iterdir()) if workspaces.is_dir() else []:
        try:
            client.workspace(ws_dir.name).delete(force=True)
        except RoostError:
            continue
