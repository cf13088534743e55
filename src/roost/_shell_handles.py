"""Shell handles of the SDK: a workspace's PTY shell sessions (`ws.shells`).

Imports: models, workspace (secrets, shells), the bound workspace and the standard library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, overload

from roost._bound import BoundWorkspace, native_path
from roost.models import ShellInfo, ShellOutput
from roost.workspace import shells
from roost.workspace.secrets import SecretUses

__all__ = ["WorkspaceShells"]


class WorkspaceShells:
    """PTY shell sessions of one workspace (`ws.shells`); they outlive this process."""

    def __init__(self, bound: BoundWorkspace) -> None:
        self._bound = bound

    def open(
        self,
        *,
        cwd: str | bytes | None = None,
        cols: int = 120,
        rows: int = 32,
        env: dict[str, str] | None = None,
        secret_env: SecretUses = (),
        secret_files: SecretUses = (),
        command: Sequence[str] | None = None,
    ) -> ShellInfo:
        """Start an interactive bash (or `command`, an argv) on a PTY; it keeps running between calls.

        `secret_env` (`"NAME"` or `"NAME=VAR"` each) and `secret_files` give it secrets attached to the
        workspace, as for `Workspace.exec`.
        """
        return self._bound(
            shells.open_shell,
            cwd=native_path(cwd),
            cols=cols,
            rows=rows,
            env=env,
            secret_env=secret_env,
            secret_files=secret_files,
            command=command,
        )

    def list(self) -> list[ShellInfo]:
        """Every shell this workspace's agent knows, running or not (`lost` after an agent restart)."""
        return self._bound(shells.list_shells)

    def read(
        self,
        shell_id: str,
        *,
        cursor: int = 0,
        max_bytes: int = 65536,
        plain: bool = False,
        until_idle_ms: int | None = None,
        until_pattern: str | None = None,
        until_command_done: bool = False,
        timeout_ms: int | None = None,
        wait_for_idle_ms: int | None = None,
    ) -> ShellOutput:
        """Output from byte `cursor` on, after waiting (up to `timeout_ms`, default 10 s) for at most one of:
        output quiet for `until_idle_ms`; `until_pattern` (a regex) in the plain text after `cursor`;
        `until_command_done`, the end of the command written last (its status in `exit_code`, at once when
        none is running). `ended_by` says which ended the wait. `wait_for_idle_ms` is `until_idle_ms`'s old name.

        Raises:
            RoostError: shell_not_found, shell_not_running, read_too_large, invalid_argument.
        """
        return self._bound(
            shells.read_shell,
            shell_id,
            cursor=cursor,
            max_bytes=max_bytes,
            plain=plain,
            until_idle_ms=until_idle_ms,
            until_pattern=until_pattern,
            until_command_done=until_command_done,
            timeout_ms=timeout_ms,
            wait_for_idle_ms=wait_for_idle_ms,
        )

    @overload
    def write(
        self, shell_id: str, data: str | bytes, *, newline: bool = ..., and_wait: Literal[False] = ...
    ) -> int: ...

    @overload
    def write(
        self,
        shell_id: str,
        data: str | bytes,
        *,
        newline: bool = ...,
        and_wait: Literal[True],
        timeout_ms: int | None = ...,
        max_bytes: int = ...,
        plain: bool = ...,
    ) -> ShellOutput: ...

    def write(
        self,
        shell_id: str,
        data: str | bytes,
        *,
        newline: bool = True,
        and_wait: bool = False,
        timeout_ms: int | None = None,
        max_bytes: int = 65536,
        plain: bool = False,
    ) -> int | ShellOutput:
        """Type into the shell (a newline is added unless `newline=False`); return bytes written.

        With `and_wait=True`, as `run`: the output from the write on once the command has finished.
        """
        if and_wait:
            return self.run(shell_id, data, newline=newline, timeout_ms=timeout_ms, max_bytes=max_bytes, plain=plain)
        return self._bound(shells.write_shell, shell_id, data, newline=newline)

    def run(
        self,
        shell_id: str,
        command: str | bytes,
        *,
        newline: bool = True,
        timeout_ms: int | None = None,
        max_bytes: int = 65536,
        plain: bool = False,
    ) -> ShellOutput:
        """Type one command line and return what the shell printed from then on once its prompt is back:
        `ended_by` "command_done" with the command's `exit_code`, or "timeout" (it still runs) or
        "shell_exited". Pass `next_cursor` to `read` for anything later.
        """
        return self._bound(
            shells.run_in_shell,
            shell_id,
            command,
            newline=newline,
            timeout_ms=timeout_ms,
            max_bytes=max_bytes,
            plain=plain,
        )

    def signal(self, shell_id: str, signal: str = "INT") -> str:
        """Send INT, TERM, HUP, KILL or QUIT to the shell's foreground job."""
        return self._bound(shells.signal_shell, shell_id, signal)

    def resize(self, shell_id: str, cols: int, rows: int) -> None:
        """Change the terminal size; the foreground program gets SIGWINCH."""
        self._bound(shells.resize_shell, shell_id, cols, rows)

    def close(self, shell_id: str) -> ShellInfo:
        """End the shell: HUP, then KILL after a short grace."""
        return self._bound(shells.close_shell, shell_id)

    def attach(
        self, shell_id: str, on_output: Callable[[bytes], None], stop: threading.Event, *, cursor: int | None = None
    ) -> ShellInfo:
        """Stream the shell's output to `on_output` until `stop` is set or the shell ends."""
        return self._bound(shells.attach_shell, shell_id, on_output, stop, cursor=cursor)
