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
from roost.mcp.result_schemas import Schema, listing, object_schema, result_schema
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
        "shell_write": object_schema({"id": str, "written": int}),
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
        max_bytes: Annotated[
            int, Field(description=f"At most this many bytes (default {DEFAULT_MODEL_CHARS}).", ge=1)
        ] = DEFAULT_MODEL_CHARS,
        wait_for_idle_ms: Annotated[
            int | None,
            Field(
                description="First wait until the shell has printed nothing for this long (e.g. 300).",
                ge=0,
                le=SHELL_WAIT_LIMIT_MS,
            ),
        ] = 300,
        timeout_ms: Annotated[
            int, Field(description="Stop waiting after this long.", ge=1, le=SHELL_WAIT_LIMIT_MS)
        ] = 10_000,
        plain: Annotated[bool, Field(description="Strip terminal control sequences (colours, redraws).")] = True,
    ) -> CallToolResult:
        """Read a shell's output from `cursor`; pass next_cursor to the next call.

        `dropped` > 0 means older output was overwritten before you read it.
        """

        def work() -> dict[str, Any]:
            if max_bytes > MAX_MODEL_CHARS:
                raise InvalidArgument(f"max_bytes must be at most {MAX_MODEL_CHARS}", hint="page with next_cursor")
            return (
                self.context.workspace(workspace)
                .shells.read(
                    shell,
                    cursor=cursor,
                    max_bytes=max_bytes,
                    plain=plain,
                    wait_for_idle_ms=wait_for_idle_ms,
                    timeout_ms=timeout_ms,
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
    ) -> CallToolResult:
        """Type text into a shell (Enter is pressed unless newline=false). Read the result with shell_read."""
        return await offload(
            lambda: {
                "id": shell,
                "written": self.context.workspace(workspace).shells.write(shell, input, newline=newline),
            }
        )

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
