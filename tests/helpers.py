"""Small helpers shared by the test suites: deadline waits, process probes and workspace teardown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from roost.backends.processes import WORKSPACE_MARKER
from roost.config import IMAGES_ENV

if TYPE_CHECKING:
    from roost import Roost
    from roost.rpc import AgentClient

T = TypeVar("T")


REPO = Path(__file__).resolve().parents[1]
# The image cache the suite shares (`make images` fills it), or $ROOST_IMAGES.
SHARED_IMAGES = Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")


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


def recorded_root_pid(home: Path, ws_id: str) -> int:
    """The workspace's root process as its backend recorded it (the agent, or the sandbox around it)."""
    from roost.backends.host_agent import HostAgentBoot
    from roost.store.records import WorkspaceStore
    from roost.workspace.engine import read_boot

    boot = WorkspaceStore(home, read_boot).load(ws_id).boot
    assert isinstance(boot, HostAgentBoot), "the backend records the workspace's root pid in its record"
    assert boot.agent_pid is not None, "the backend records the workspace's root pid in its record"
    return boot.agent_pid


def agent_process(ws_id: str) -> int:
    """The guest agent itself: a python process of the workspace listening for connections."""

    def find() -> list[int]:
        return [
            pid
            for pid in pids_with_env(WORKSPACE_MARKER, ws_id)
            if (argv := cmdline(pid)) and os.path.basename(argv[0]).startswith("python") and "--listen" in argv
        ]

    (pid,) = wait_until(find, what="the workspace's agent process")
    return pid


def kill_agent(home: Path, ws_id: str) -> int:
    """SIGKILL the workspace's agent (as a crash or the OOM killer would); wait until its root is gone too.

    Harmless: the agent is a process the test's own workspace started.
    """
    pid = agent_process(ws_id)
    root = recorded_root_pid(home, ws_id)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid) and not pid_alive(root), what="the agent to die")
    return pid


def processes_mentioning(text: str) -> set[int]:
    """Live processes whose command line contains `text` (e.g. a test's own ROOST_HOME)."""
    return {
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and text in " ".join(cmdline(int(entry))) and pid_alive(int(entry))
    }


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


@contextmanager
def roost_client(home: Path, backend: str) -> Iterator[Roost]:
    """A Roost on `home` and `backend` whose workspaces (all of them) and connections go at exit."""
    from roost import Roost

    client = Roost(home=home, backend=backend)
    try:
        yield client
    finally:
        delete_all_workspaces(client)
        client.close()


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


def listed(
    client: AgentClient, op: str, args: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records an agent op streams (as the host reads them, under a window) and its summary."""
    from roost.rpc import RecordStream

    with RecordStream(client.stream(op, args)) as stream:
        records = list(stream)
        return records, stream.result


def discard_tree(path: Path) -> None:
    """Remove a large tree (a pulled image) without making the test wait: it leaves sight in one
    rename, and a detached `rm -rf` (not waited for) frees the space while the next test runs."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink():
        path.unlink()
        return
    tomb = path.with_name(f".discarded-{path.name}-{time.time_ns()}")
    path.rename(tomb)
    subprocess.Popen(
        ["rm", "-rf", "--", str(tomb)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
