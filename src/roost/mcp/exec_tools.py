"""Command tools: `workspace_exec` and `workspace_logs` (exec history and paging through saved output).

Output a model sees is capped (see `roost.mcp.output_caps`); the full captured
output stays in the workspace's exec history, read back by offset here.

Imports the MCP layer's siblings, `roost.models` and the MCP types only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.errors import InvalidArgument
from roost.mcp.output_caps import (
    DEFAULT_MODEL_CHARS,
    MAX_MODEL_CHARS,
    ResumeHint,
    exec_view,
    exec_view_schema,
    model_chars,
    timed_out_note,
)
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema, extended, listing, one_of, result_schema
from roost.mcp.results import ToolReply, offload
from roost.mcp.toolkit import (
    DEFAULT_EXEC_TIMEOUT,
    Command,
    Cwd,
    EnvVars,
    ExecTimeout,
    MaxOutputChars,
    SecretFileList,
    SecretUseList,
    ToolGroup,
    WorkspaceRef,
    guest_path,
)
from roost.models import ExecRecord, ExecResult, OutputSlice

DEFAULT_HISTORY = 20


def resume_with_logs(workspace_id: str, result: ExecResult) -> Callable[[str], ResumeHint | None]:
    """Per stream, a marker hint naming the workspace_logs call that reads the omitted bytes."""

    def for_stream(stream: str) -> ResumeHint | None:
        if result.exec_id is None:
            return None

        def hint(offset: int, omitted: int) -> str:
            size = min(omitted, MAX_MODEL_CHARS)
            return (
                f"read the rest with workspace_logs workspace={workspace_id} exec_id={result.exec_id} "
                f"stream={stream} offset={offset} max_bytes={size}"
            )

        return hint

    return for_stream


class ExecTools(ToolGroup):
    """The tools for `workspace_exec`, and `workspace_logs` for the history and saved output."""

    TOOLS = (
        ("workspace_exec", ToolAnnotations(title="Run a command in a workspace", open_world_hint=False)),
        ("workspace_logs", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "workspace_exec": exec_view_schema(),
        "workspace_logs": one_of(
            listing("execs", ExecRecord, workspace=str),
            extended(result_schema(OutputSlice), {"next_offset": int | None}),
        ),
    }

    async def workspace_exec(
        self,
        workspace: WorkspaceRef,
        command: Command,
        cwd: Cwd = None,
        env: EnvVars = None,
        timeout: ExecTimeout = DEFAULT_EXEC_TIMEOUT,
        stdin: Annotated[str | None, Field(description="Text fed to the command's stdin (closed otherwise).")] = None,
        max_output_chars: MaxOutputChars = None,
        secret_env: SecretUseList = None,
        secret_files: SecretFileList = None,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Run a command to completion in a workspace and return its exit code and output.

        Returns exit_code, signal, timed_out, duration_ms, stdout, stderr and exec_id.
        Output longer than max_output_chars per stream is cut to its head and tail
        with a marker line; `<stream>_truncated_for_model` is then true and the whole
        output can be read with workspace_logs (exec_id, stream, offset). A timeout
        is not an error: the result has timed_out=true and the partial output.
        A client that cancels the call (notifications/cancelled) stops the command:
        its whole process group is killed. A client that asks for progress hears every
        few seconds how long it has run and how much output it has sent.
        """

        cancel = threading.Event()
        progress = heartbeat_for(call, "running")

        def work() -> ToolReply:
            limit = model_chars(max_output_chars)
            self.context.allow_uses(secret_env, secret_files)
            handle = self.context.workspace(workspace)
            result = handle.exec(
                command,
                cwd=guest_path(cwd, "cwd"),
                env=env,
                timeout=timeout,
                stdin=stdin,
                secret_env=secret_env or (),
                secret_files=secret_files or (),
                cancel=cancel,
                on_output=progress.count_output if progress is not None else None,
            )
            view = exec_view(result, limit, resume_with_logs(handle.id, result))
            return ToolReply(view, timed_out_note(result, timeout))

        return await offload(work, cancel=cancel, progress=progress)

    async def workspace_logs(
        self,
        workspace: WorkspaceRef,
        exec_id: Annotated[
            int | None, Field(description="Read this exec's saved output instead of listing the history.")
        ] = None,
        stream: Annotated[
            Literal["stdout", "stderr"], Field(description="Which output of exec_id to read.")
        ] = "stdout",
        offset: Annotated[int, Field(description="Byte offset into the saved output to start from.")] = 0,
        max_bytes: Annotated[
            int,
            Field(description=f"Bytes to read from offset (default {DEFAULT_MODEL_CHARS}, at most {MAX_MODEL_CHARS})."),
        ] = DEFAULT_MODEL_CHARS,
        limit: Annotated[int, Field(description="How many of the newest history entries to list.")] = DEFAULT_HISTORY,
    ) -> CallToolResult:
        """List a workspace's exec history (newest last), or page through one exec's saved output.

        Without exec_id: the newest `limit` execs (command, exit code, timing, output
        sizes). With exec_id: `max_bytes` of its stdout or stderr from `offset`;
        `next_offset` is set while there is more to read.
        """

        def work() -> dict[str, Any]:
            handle = self.context.workspace(workspace)
            if exec_id is None:
                return {"workspace": handle.id, "execs": [entry.to_dict() for entry in handle.logs(limit)]}
            if not 0 <= max_bytes <= MAX_MODEL_CHARS:
                raise InvalidArgument(
                    f"max_bytes must be between 0 and {MAX_MODEL_CHARS}", hint="read in pages with offset"
                )
            window = handle.exec_output(exec_id, stream, offset=offset, max_bytes=max_bytes).to_dict()
            window["next_offset"] = None if window["eof"] else window["offset"] + window["length"]
            return window

        return await offload(work)
