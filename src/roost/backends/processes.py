"""Host process plumbing shared by process-based backends (mock, sandbox).

Starting a detached agent that outlives the CLI, recognising it again by pid
without trusting a recycled pid, and killing a workspace's whole process
tree, including descendants that double-forked away from it.

Imports: errors and the standard library only.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from roost.errors import BackendError

# Every process of a workspace carries this in its environment, so delete
# finds the ones that left the agent's tree.
WORKSPACE_MARKER = "ROOST_WORKSPACE_ID"

# Agents this process started, kept so a long-lived host (MCP server, SDK
# user) can reap them after delete instead of collecting zombies.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


_log_keepers: dict[Path, subprocess.Popen[bytes]] = {}


def spawn_detached(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    pass_fds: Sequence[int] = (),
    log_limit: int | None = None,
) -> int:
    """Start `argv` in a new session, detached from our terminal; return its pid.

    Its output is appended to `log_path`; with `log_limit`, through a pipe to a keeper process
    (`roost.backends.bounded_log`, carrying the same environment, so the same marker) that holds
    the file under that many bytes. `pass_fds` are inherited under the same numbers; every other
    descriptor is closed.

    Raises:
        BackendError: backend_start_failed.
    """
    keeper = None
    if log_limit is None:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    else:
        log_fd, keeper = _bounded_log_pipe(log_path, log_limit, env, cwd)
    try:
        proc = _popen(argv, env, cwd, stdout=log_fd, pass_fds=pass_fds)
    finally:
        os.close(log_fd)
    if keeper is not None:
        _log_keepers[log_path] = keeper
    return proc.pid


def wait_for_log(log_path: Path, timeout: float = 0.5) -> None:
    """Once the process writing `log_path` (spawned here with a `log_limit`) has ended, wait up to
    `timeout` seconds for its keeper to write what was still in the pipe: its last words."""
    keeper = _log_keepers.get(log_path)
    if keeper is None:
        return
    try:
        keeper.wait(timeout)
    except subprocess.TimeoutExpired:
        return
    del _log_keepers[log_path]


def _popen(
    argv: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    *,
    stdout: int,
    stdin: int = subprocess.DEVNULL,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    try:
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stdout,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise BackendError(f"cannot start {argv[0]}: {exc.strerror}", code="backend_start_failed") from None
    # Deliberately not waited for: it outlives this process.
    _spawned[proc.pid] = proc
    return proc


def _bounded_log_pipe(
    log_path: Path, limit: int, env: dict[str, str], cwd: Path
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start a log keeper on `log_path`; the write end of the pipe it reads (ours to close), and the keeper."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    argv = [sys.executable, "-I", "-m", "roost.backends.bounded_log", str(log_path), str(limit)]
    try:
        keeper = _popen(argv, env, cwd, stdout=subprocess.DEVNULL, stdin=read_end)
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return write_end, keeper


def read_proc_file(path: str) -> bytes:
    """A /proc file's bytes; empty when the process (or the file) is gone."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def process_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, or None if there is no such process."""
    raw = read_proc_file(f"/proc/{pid}/stat")
    if not raw:
        return None
    # The command name may contain spaces and parentheses: the state follows the last ')'.
    return raw[raw.rfind(b")") + 2 :].split(b" ", 1)[0].decode() or None


def is_alive(pid: int) -> bool:
    """True for a running process; zombies and missing pids count as dead."""
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline_contains(pid: int, needle: str) -> bool:
    return needle.encode() in read_proc_file(f"/proc/{pid}/cmdline").replace(b"\0", b" ")


def carries_marker(pid: int, ws_id: str) -> bool:
    """True when `pid`'s environment names workspace `ws_id` (pids get reused)."""
    return f"{WORKSPACE_MARKER}={ws_id}".encode() in read_proc_file(f"/proc/{pid}/environ").split(b"\0")


def recorded_pid(ws_id: str, pid: int | None) -> int | None:
    """`pid`, as a workspace's record keeps it, if that process still lives and is workspace `ws_id`'s."""
    if pid is not None and is_alive(pid) and carries_marker(pid, ws_id):
        return pid
    return None


def _program(pid: int) -> str:
    """The base name of `pid`'s argv[0]."""
    return os.path.basename(read_proc_file(f"/proc/{pid}/cmdline").split(b"\0", 1)[0].decode(errors="replace"))


def find_marked(ws_id: str, needle: str, program: str = "") -> int | None:
    """The pid of a live process of workspace `ws_id` whose command line holds `needle`
    (and whose argv[0]'s base name starts with `program`: a launcher's command line may
    hold the same words)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            if (
                is_alive(pid)
                and cmdline_contains(pid, needle)
                and _program(pid).startswith(program)
                and carries_marker(pid, ws_id)
            ):
                return pid
    return None


def wait_for_marked(ws_id: str, needle: str, *, program: str = "", deadline: float) -> int | None:
    """`find_marked`, retried until `deadline` seconds have passed."""
    end = time.monotonic() + deadline
    while True:
        pid = find_marked(ws_id, needle, program)
        if pid is not None or time.monotonic() >= end:
            return pid
        time.sleep(0.01)


def _ppid(pid: int) -> int | None:
    raw = read_proc_file(f"/proc/{pid}/stat")
    if not raw:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split(b" ")
    return int(fields[1]) if len(fields) > 1 else None


def workspace_pids(ws_id: str, root_pid: int | None) -> set[int]:
    """Every live process of the workspace: the agent's tree plus marked strays."""
    marker = f"{WORKSPACE_MARKER}={ws_id}".encode() + b"\0"
    children: dict[int, list[int]] = {}
    found: set[int] = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        parent = _ppid(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
        if marker in read_proc_file(f"/proc/{pid}/environ") + b"\0":
            found.add(pid)
    if root_pid is not None and process_state(root_pid) is not None:
        stack = [root_pid]
        while stack:
            pid = stack.pop()
            found.add(pid)
            stack.extend(children.get(pid, []))
    return found


def reap(pid: int) -> None:
    """Collect `pid` if it is our own child (no zombie left behind)."""
    proc = _spawned.get(pid)
    if proc is not None and proc.poll() is not None:
        del _spawned[pid]


# How long killed processes may take to be gone: a process exits as soon as it can, but one writing
# when the disk is saturated (deleting and writing many large trees at once) can take seconds.
KILL_DEADLINE_SECONDS = 10.0
# How long one wait for a killed process lasts before the tree is looked at again (new children).
KILL_POLL_SECONDS = 0.05


def kill_tree(ws_id: str, root_pid: int | None, *, deadline: float = KILL_DEADLINE_SECONDS) -> None:
    """SIGKILL every process of a workspace and wait (bounded) until they are gone.

    Raises:
        BackendError: process_survived when something outlives the deadline.
    """
    end = time.monotonic() + deadline
    # A process that is exiting can no longer show its environment (the marker)
    # yet is not a zombie either: remember whom we killed and wait for them too.
    killed: set[int] = set()
    while True:
        found = {pid for pid in workspace_pids(ws_id, root_pid) if is_alive(pid)}
        for pid in found - killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        killed |= found
        for pid in killed:
            reap(pid)
        pids = found | {pid for pid in killed if is_alive(pid)}
        if not pids:
            return
        now = time.monotonic()
        if now >= end:
            raise BackendError(
                f"{len(pids)} process(es) of workspace {ws_id} survived SIGKILL",
                code="process_survived",
                hint="check `ps` for processes in state D (stuck in the kernel) and retry",
            )
        wait_for_an_exit(pids, min(KILL_POLL_SECONDS, end - now))


def wait_for_an_exit(pids: set[int], timeout: float) -> None:
    """Return as soon as one of `pids` has exited (or `timeout` passed): no polling interval to pay.

    Waits on pidfds (Linux 5.3+); where there are none, sleeps a short while instead.
    """
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                return  # gone already
            except (OSError, AttributeError):
                time.sleep(min(timeout, 0.005))
                return
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        poller.poll(max(0, int(timeout * 1000)))
    finally:
        for fd in fds:
            os.close(fd)


def log_tail(log_path: Path, lines: int = 1, window: int = 64 * 1024) -> str:
    """The last `lines` lines of a log, read from its end (at most `window` bytes of it)."""
    try:
        with open(log_path, "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - window))
            text = log.read().decode(errors="replace").strip()
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
