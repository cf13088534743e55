"""Service tools (full profile): start, list, status, logs and stop named background services.

Imports the MCP layer's siblings, `roost.models`, the SDK's `Readiness`, `roost.arguments` (for its bounds) and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost import arguments
from roost.client import Readiness
from roost.mcp.output_caps import DEFAULT_MODEL_CHARS, cap_text
from roost.mcp.result_schemas import Schema, listing, object_schema, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import (
    Command,
    Cwd,
    EnvVars,
    PublishList,
    SecretFileList,
    SecretUseList,
    ToolGroup,
    WorkspaceRef,
    guest_path,
)
from roost.models import ServiceInfo

ServiceName = Annotated[str, Field(description="The service's name: [a-z0-9][a-z0-9_.-]{0,62}.")]


class ServiceTools(ToolGroup):
    """The tools for named background services and their readiness."""

    TOOLS = (
        ("service_start", ToolAnnotations(title="Start a background service", open_world_hint=False)),
        ("service_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("service_status", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("service_logs", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("service_stop", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        **dict.fromkeys(("service_start", "service_status", "service_stop"), result_schema(ServiceInfo)),
        "service_list": listing("services", ServiceInfo),
        "service_logs": object_schema({"name": str, "stream": str, "log": str, "truncated_for_model": bool}),
    }

    async def service_start(
        self,
        workspace: WorkspaceRef,
        name: ServiceName,
        command: Command,
        cwd: Cwd = None,
        env: EnvVars = None,
        ready_file: Annotated[str | None, Field(description="Ready once this path exists.")] = None,
        ready_tcp: Annotated[str | None, Field(description="Ready once [host:]port accepts a connection.")] = None,
        ready_http: Annotated[str | None, Field(description="Ready once GET of this URL answers 2xx/3xx.")] = None,
        ready_command: Annotated[str | None, Field(description="Ready once this shell command exits 0.")] = None,
        ready_timeout: Annotated[
            float, Field(description="Seconds to wait for readiness.", gt=0, le=arguments.MAX_READY_TIMEOUT_S)
        ] = 30.0,
        ready_interval_ms: Annotated[
            int,
            Field(
                description="Probe interval.",
                ge=arguments.MIN_READY_INTERVAL_MS,
                le=arguments.MAX_READY_INTERVAL_MS,
            ),
        ] = 100,
        restart: Annotated[Literal["no", "on-failure", "always"], Field(description="Restart policy.")] = "no",
        publish: PublishList = None,
        secret_env: SecretUseList = None,
        secret_files: SecretFileList = None,
    ) -> CallToolResult:
        """Start a long-running process (server, watcher) and wait until it is ready.

        Give at most one ready_* probe. The result's state is `ready`, or `failed`
        with `reason` and the last lines of its output in `log_tail`. Ports in `publish`
        are served on the host's loopback until the service stops; `ports` says where.
        """

        def work() -> dict[str, Any]:
            ready = Readiness(
                file=ready_file,
                tcp=ready_tcp,
                http=ready_http,
                command=ready_command,
                timeout_s=ready_timeout,
                interval_ms=ready_interval_ms,
            )
            self.context.allow_uses(secret_env, secret_files)
            service = self.context.workspace(workspace).services.start(
                name,
                command,
                cwd=guest_path(cwd, "cwd"),
                env=env,
                ready=ready,
                restart=restart,
                publish=publish,
                secret_env=secret_env or (),
                secret_files=secret_files or (),
            )
            return service.to_dict()

        return await offload(work)

    async def service_list(self, workspace: WorkspaceRef) -> CallToolResult:
        """List the workspace's services and their states (starting, ready, failed, exited, stopped)."""
        return await offload(
            lambda: {"services": [s.to_dict() for s in self.context.workspace(workspace).services.list()]}
        )

    async def service_status(self, workspace: WorkspaceRef, name: ServiceName) -> CallToolResult:
        """One service: state, pid, exit code, times, restarts, and the reason it failed if it did."""
        return await offload(lambda: self.context.workspace(workspace).services.status(name).to_dict())

    async def service_logs(
        self,
        workspace: WorkspaceRef,
        name: ServiceName,
        stream: Annotated[Literal["stdout", "stderr", "both"], Field(description="Which output.")] = "both",
        tail: Annotated[int, Field(description="Only the last N lines.", ge=1, le=arguments.MAX_LOG_TAIL_LINES)] = 200,
    ) -> CallToolResult:
        """The last lines a service printed (capped for the model)."""

        def work() -> dict[str, Any]:
            text = self.context.workspace(workspace).services.logs(name, stream=stream, tail=tail)
            capped = cap_text(text, DEFAULT_MODEL_CHARS)
            return {"name": name, "stream": stream, "log": capped.text, "truncated_for_model": capped.truncated}

        return await offload(work)

    async def service_stop(
        self,
        workspace: WorkspaceRef,
        name: ServiceName,
        timeout: Annotated[
            float | None,
            Field(description="Grace seconds before KILL (default 10).", ge=0, le=arguments.MAX_STOP_GRACE_S),
        ] = None,
    ) -> CallToolResult:
        """Stop a service: TERM its process group, KILL after the grace period (a dead one stops at once)."""
        return await offload(lambda: self.context.workspace(workspace).services.stop(name, timeout=timeout).to_dict())
