"""The one object through which the agent starts, signals and watches processes.

Execs, shells and services all go through an `OsProcesses` (the agent
holds the agent's one): every child starts in a session and process group
of its own, "signal it unless it is gone already" is written once, and a
test can stand in a fake that decides when processes exit without forking.

Imports: this package and the standard library only.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from roost.agent.system.procfs import is_running, session_members, session_of

if TYPE_CHECKING:
    import subprocess


class OsProcesses:
    """Spawn, signal, reap and inspect processes: the agent's only calls that do."""

    def spawn(
        self, argv: Sequence[str], cwd: str, env: dict[str, str], *, stdin: int, stdout: int, stderr: int
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new session (its pid is its process group's id), inheriting no other fds.

        `stdin`, `stdout`, `stderr`: a descriptor, or `subprocess.PIPE`/`DEVNULL`.

        Raises:
            OSError: it cannot start (FileNotFoundError for a missing command).
        """
        import subprocess  # imported here: an idle agent has started no process yet

        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )

    def signal(self, pid: int, sig: int) -> None:
        """Send `sig` to one process; one that is gone already is left alone.

        Raises:
            ValueError: `pid` is not a process id (0 and -1 would signal the agent's own group, or everyone).
        """
        _check_id(pid)
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def signal_group(self, pgid: int, sig: int) -> None:
        """Send `sig` to a whole process group; a group that is gone already is left alone.

        Raises:
            ValueError: `pgid` is not a group id (0 would signal the agent's own group).
        """
        _check_id(pgid)
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def exited(self, proc: subprocess.Popen[bytes]) -> bool:
        """True once the process is gone; a zombie counts as gone (and is reaped here)."""
        if proc.poll() is not None:
            return True
        if is_running(proc.pid):
            return False
        proc.poll()  # it turned zombie since the first poll: reap it now, so its return code is known
        return True

    def session_members(self, sid: int) -> list[int]:
        """The running processes of session `sid` (a shell's, say: whatever it started too)."""
        return session_members(sid)

    def leads_a_session(self, pid: int) -> bool:
        """Whether `pid` is running and leads its own session (as every child spawned here does)."""
        return session_of(pid) == pid


def exit_status(returncode: int) -> tuple[int | None, str | None]:
    """A `Popen.returncode` as records carry it: (exit code, None), or (None, the signal that ended it)."""
    if returncode >= 0:
        return returncode, None
    try:
        return None, signal.Signals(-returncode).name
    except ValueError:  # a real-time signal, which has no name of its own
        return None, str(-returncode)


def _check_id(pid: int) -> None:
    if pid <= 0:
        raise ValueError(f"refusing to signal {pid}: not one process or group")
