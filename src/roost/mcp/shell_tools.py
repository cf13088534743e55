"""Shell tools (full profile): open, list, read, write, signal, resize and close PTY shells.

A shell keeps its state (cwd, variables, running programs) between calls;
reads page through its output with a byte cursor, each capped at max_bytes.

Imports the MCP layer's siblings, `roost.models`, `roost.arguments` (for its bounds) and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.arguments import SHELL_WAIT_LIMIT_MS, TERMINAL_CELLS_LIMIT
from roost.errors import InvalidArgument
from roost.mcp.output_caps import DEFAULT_MODEL_CHARS, MAX_MODEL_CHARS
from roost.mcp.result_schemas import Schema, listing, object_schema, one_of, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import (
    Cwd,
    EnvVars,
    SecretFileList,
    SecretUseList,
    ToolGroup,
    WorkspaceRef,
    guest_path,
)
from roost.models import ShellInfo, ShellOutput

ShellRef = Annotated[str, Field(description="The shell id returned by shell_open (sh-...).")]
MaxBytes = Annotated[int, Field(description=f"At most this many bytes (default {DEFAULT_MODEL_CHARS}).", ge=1)]
TimeoutMs = Annotated[int, Field(description="Stop waiting after this long.", ge=1, le=SHELL_WAIT_LIMIT_MS)]
Plain = Annotated[bool, Field(description="Strip terminal control sequences (colours, redraws).")]
DEFAULT_IDLE_MS = 300
DEFAULT_TIMEOUT_MS = 10_000


def _check_max_bytes(max_bytes: int) -> None:
    if max_bytes > MAX_MODEL_CHARS:
        raise InvalidArgument(f"max_bytes must be at most {MAX_MODEL_CHARS}", hint="page with next_cursor")


class ShellTools(ToolGroup):
    """The tools for PTY shells that persist between calls."""

    TOOLS = (
        ("shell_open", ToolAnnotations(title="Open a shell", open_world_hint=False)),
        ("shell_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("shell_read", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("shell_write", ToolAnnotations(open_world_hint=False)),
        ("shell_signal", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
        ("shell_resize", ToolAnnotations(open_world_hint=False)),
        ("shell_close", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "shell_open": result_schema(ShellInfo),
        "shell_list": listing("shells", ShellInfo),
        "shell_read": result_schema(ShellOutput),
        # Typed only, or (and_wait) typed and read back as a shell_read.
        "shell_write": one_of(object_schema({"id": str, "written": int}), result_schema(ShellOutput)),
        "shell_signal": object_schema({"id": str, "signal": str}),
        "shell_resize": object_schema({"id": str, "cols": int, "rows": int}),
        "shell_close": result_schema(ShellInfo),
    }

    async def shell_open(
        self,
        workspace: WorkspaceRef,
        cwd: Cwd = None,
        cols: Annotated[int, Field(description="Terminal width.", ge=1, le=TERMINAL_CELLS_LIMIT)] = 120,
        rows: Annotated[int, Field(description="Terminal height.", ge=1, le=TERMINAL_CELLS_LIMIT)] = 32,
        env: EnvVars = None,
        secret_env: SecretUseList = None,
        secret_files: SecretFileList = None,
    ) -> CallToolResult:
        """Start an interactive bash on a PTY in the workspace and return its id.

        The shell persists across calls: cd, exported variables and running
        programs stay. Type with shell_write, read with shell_read.
        """

        def work() -> dict[str, Any]:
            self.context.allow_uses(secret_env, secret_files)
            shell = self.context.workspace(workspace).shells.open(
                cwd=guest_path(cwd, "cwd"),
                cols=cols,
                rows=rows,
                env=env,
                secret_env=secret_env or (),
                secret_files=secret_files or (),
            )
            return shell.to_dict()

        return await offload(work)

    async def shell_list(self, workspace: WorkspaceRef) -> CallToolResult:
        """List the workspace's shells and their state (running, exited, closed, lost)."""
        return await offload(lambda: {"shells": [s.to_dict() for s in self.context.workspace(workspace).shells.list()]})

    async def shell_read(
        self,
        workspace: WorkspaceRef,
        shell: ShellRef,
        cursor: Annotated[int, Field(description="Byte offset to read from: 0, or next_cursor of the last read.")] = 0,
        max_bytes: MaxBytes = DEFAULT_MODEL_CHARS,
        until_idle_ms: Annotated[
            int | None,
            Field(
                description=f"First wait until the shell has printed nothing for this long. The default "
                f"({DEFAULT_IDLE_MS}) applies when no other wait is given.",
                ge=0,
                le=SHELL_WAIT_LIMIT_MS,
            ),
        ] = None,
        until_pattern: Annotated[
            str | None,
            Field(description="First wait until this regular expression matches the plain text after `cursor`."),
        ] = None,
        until_command_done: Annotated[
            bool,
            Field(
                description="First wait until the command written last has finished; its exit status is in "
                "exit_code (at once when nothing runs)."
            ),
        ] = False,
        timeout_ms: TimeoutMs = DEFAULT_TIMEOUT_MS,
        plain: Plain = True,
        wait_for_idle_ms: Annotated[
            int | None, Field(description="Older name of until_idle_ms.", ge=0, le=SHELL_WAIT_LIMIT_MS)
        ] = None,
    ) -> CallToolResult:
        """Read a shell's output from `cursor`; pass next_cursor to the next call.

        Waits first for one of until_idle_ms, until_pattern or until_command_done (or for the
        shell's end, or timeout_ms); `ended_by` says which: idle, pattern, command_done, timeout,
        shell_exited. `dropped` > 0 means older output was overwritten before you read it.
        """

        def work() -> dict[str, Any]:
            _check_max_bytes(max_bytes)
            nothing_else = until_pattern is None and not until_command_done and wait_for_idle_ms is None
            idle = DEFAULT_IDLE_MS if until_idle_ms is None and nothing_else else until_idle_ms
            return (
                self.context.workspace(workspace)
                .shells.read(
                    shell,
                    cursor=cursor,
                    max_bytes=max_bytes,
                    plain=plain,
                    until_idle_ms=idle,
                    until_pattern=until_pattern,
                    until_command_done=until_command_done,
                    timeout_ms=timeout_ms,
                    wait_for_idle_ms=wait_for_idle_ms,
                )
                .to_dict()
            )

        return await offload(work)

    async def shell_write(
        self,
        workspace: WorkspaceRef,
        shell: ShellRef,
        input: Annotated[str, Field(description="Text to type.")],
        newline: Annotated[bool, Field(description="Press Enter after the text.")] = True,
        and_wait: Annotated[
            bool,
            Field(
                description="Wait until the command has finished and return its output (from this write on) "
                "and exit_code, as shell_read with until_command_done does."
            ),
        ] = False,
        timeout_ms: TimeoutMs = DEFAULT_TIMEOUT_MS,
        max_bytes: MaxBytes = DEFAULT_MODEL_CHARS,
        plain: Plain = True,
    ) -> CallToolResult:
        """Type text into a shell (Enter is pressed unless newline=false).

        With and_wait=true, one call runs a command line: the result has its output, exit_code and
        ended_by (command_done, timeout or shell_exited). Otherwise read the result with shell_read.
        """

        def work() -> dict[str, Any]:
            shells = self.context.workspace(workspace).shells
            if not and_wait:
                return {"id": shell, "written": shells.write(shell, input, newline=newline)}
            _check_max_bytes(max_bytes)
            return shells.run(
                shell, input, newline=newline, timeout_ms=timeout_ms, max_bytes=max_bytes, plain=plain
            ).to_dict()

        return await offload(work)

    async def shell_signal(
        self,
        workspace: WorkspaceRef,
        shell: ShellRef,
        signal: Annotated[Literal["INT", "TERM", "HUP", "KILL", "QUIT"], Field(description="INT is Ctrl-C.")] = "INT",
    ) -> CallToolResult:
        """Send a signal to the shell's foreground program (INT interrupts it like Ctrl-C)."""
        return await offload(
            lambda: {"id": shell, "signal": self.context.workspace(workspace).shells.signal(shell, signal)}
        )

    async def shell_resize(
        self,
        workspace: WorkspaceRef,
        shell: ShellRef,
        cols: Annotated[int, Field(ge=1, le=TERMINAL_CELLS_LIMIT)],
        rows: Annotated[int, Field(ge=1, le=TERMINAL_CELLS_LIMIT)],
    ) -> CallToolResult:
        """Change a shell's terminal size (the program in it gets SIGWINCH)."""

        def work() -> dict[str, Any]:
            self.context.workspace(workspace).shells.resize(shell, cols, rows)
            return {"id": shell, "cols": cols, "rows": rows}

        return await offload(work)

    async def shell_close(self, workspace: WorkspaceRef, shell: ShellRef) -> CallToolResult:
        """End a shell and everything running in it (HUP, then KILL after a short grace)."""
        return await offload(lambda: self.context.workspace(workspace).shells.close(shell).to_dict())
