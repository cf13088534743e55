"""The `run` tool: one command in a fresh workspace that is deleted afterwards (profile `run` and up).

Imports `roost.config`, the MCP layer's siblings and the MCP server context and types only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations

from roost.config import DEFAULT_ENV
from roost.mcp.output_caps import exec_view, exec_view_schema, model_chars, timed_out_note
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema
from roost.mcp.results import ToolReply, offload
from roost.mcp.toolkit import (
    DEFAULT_EXEC_TIMEOUT,
    AllowList,
    Command,
    Cwd,
    EnvName,
    EnvVars,
    ExecTimeout,
    MaxOutputChars,
    NetworkPolicyName,
    PublishList,
    SeedPath,
    ToolGroup,
    guest_path,
)


class RunTools(ToolGroup):
    """The tools for `run`: one command in a throwaway workspace."""

    TOOLS = (("run", ToolAnnotations(title="Run a command in a throwaway workspace", open_world_hint=False)),)
    OUTPUTS: ClassVar[dict[str, Schema]] = {"run": exec_view_schema()}

    async def run(
        self,
        command: Command,
        env: EnvName = DEFAULT_ENV,
        timeout: ExecTimeout = DEFAULT_EXEC_TIMEOUT,
        seed_path: SeedPath = None,
        cwd: Cwd = None,
        env_vars: EnvVars = None,
        max_output_chars: MaxOutputChars = None,
        network_policy: NetworkPolicyName = "off",
        allow: AllowList = None,
        publish: PublishList = None,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Run one command in a fresh workspace and delete the workspace afterwards.

        Returns an exec result as workspace_exec does (exit_code, signal, timed_out, duration_ms, stdout,
        stderr, ...; exec_id is null). The
        workspace is gone once this returns, so nothing persists between calls:
        use workspace_create + workspace_exec for work that spans several commands.
        Long output is cut to its head and tail; rerun in a persistent workspace to
        page through all of it.
        """

        progress = heartbeat_for(call, "running")

        def work() -> ToolReply:
            limit = model_chars(max_output_chars)
            seed = self.context.roots.confine(seed_path, param="seed_path") if seed_path is not None else None
            result = self.context.roost.run(
                env,
                command,
                timeout=timeout,
                cwd=guest_path(cwd, "cwd"),
                env_vars=env_vars,
                seed_path=seed,
                network_policy=network_policy,
                allow=allow,
                publish=publish,
                progress=progress,
            )
            view: dict[str, Any] = exec_view(result, limit, lambda stream: _gone)
            view["exec_id"] = None  # the workspace and its history are gone
            return ToolReply(view, timed_out_note(result, timeout))

        return await offload(work, progress=progress)


def _gone(offset: int, omitted: int) -> str:
    return "the workspace is deleted; use workspace_create + workspace_exec to keep output you can page through"
