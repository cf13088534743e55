"""Workspace lifecycle tools: create, list, status, stats, update, delete, stop, start, restart, fork, and the environment catalog (profile `core`).

Imports `roost.config`, `roost.arguments` (for its bounds), `roost.models`, the MCP layer's siblings
and the MCP server context and types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost import arguments
from roost.config import DEFAULT_ENV
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema, listing, object_schema, result_schema
from roost.mcp.results import offload, workspace_view
from roost.mcp.toolkit import (
    AllowList,
    EnvName,
    NetworkPolicyName,
    PublishList,
    SecretAttachList,
    SeedPath,
    ToolGroup,
    WorkspaceRef,
    secret_names,
)
from roost.models import EnvInfo, ForkResult, WorkspaceInfo, WorkspaceStats

Labels = Annotated[dict[str, str] | None, Field(description="Labels (key -> value) to attach.")]
TtlSeconds = Annotated[
    int | None,
    Field(
        description="Delete the workspace automatically this many seconds after creation "
        f"(1 to {arguments.MAX_TTL_SECONDS}).",
        ge=1,
        le=arguments.MAX_TTL_SECONDS,
    ),
]
WorkspaceName = Annotated[
    str | None,
    Field(description="A unique name: 1-63 of a-z 0-9 _ . -, not starting with 'ws-' (which marks ids)."),
]

_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


Vcpus = Annotated[
    int | None,
    Field(
        description=f"Virtual CPUs (1 to {arguments.MAX_VCPUS}; a CPU time quota in the sandbox).",
        ge=1,
        le=arguments.MAX_VCPUS,
    ),
]
MemMib = Annotated[
    int | None,
    Field(
        description=f"Memory in MiB, tmpfs included ({arguments.MIN_MEM_MIB} to {arguments.MAX_MEM_MIB}).",
        ge=arguments.MIN_MEM_MIB,
        le=arguments.MAX_MEM_MIB,
    ),
]
Pids = Annotated[
    int | None,
    Field(
        description=f"Most processes at once (sandbox; default 1024; {arguments.MIN_PIDS} to {arguments.MAX_PIDS}).",
        ge=arguments.MIN_PIDS,
        le=arguments.MAX_PIDS,
    ),
]


class WorkspaceTools(ToolGroup):
    """The tools for the workspace lifecycle and the environment catalog."""

    TOOLS = (
        ("workspace_create", ToolAnnotations(title="Create a workspace", open_world_hint=False)),
        ("workspace_list", _READ_ONLY),
        ("workspace_status", _READ_ONLY),
        ("workspace_stats", _READ_ONLY),
        ("workspace_update", ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
        ("workspace_delete", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
        ("workspace_stop", ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
        ("workspace_start", ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
        ("workspace_restart", ToolAnnotations(open_world_hint=False)),
        ("workspace_fork", ToolAnnotations(title="Fork a workspace", open_world_hint=False)),
        ("env_list", _READ_ONLY),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        **dict.fromkeys(
            (
                "workspace_create",
                "workspace_status",
                "workspace_update",
                "workspace_stop",
                "workspace_start",
                "workspace_restart",
            ),
            result_schema(WorkspaceInfo),
        ),
        "workspace_list": listing("workspaces", WorkspaceInfo),
        "workspace_stats": result_schema(WorkspaceStats),
        "workspace_fork": result_schema(ForkResult),
        "workspace_delete": object_schema({"id": str, "deleted": bool}),
        "env_list": listing("environments", EnvInfo),
    }

    async def workspace_create(
        self,
        env: EnvName = DEFAULT_ENV,
        name: WorkspaceName = None,
        labels: Labels = None,
        seed_path: SeedPath = None,
        ttl_seconds: TtlSeconds = None,
        vcpus: Vcpus = None,
        mem_mib: MemMib = None,
        pids: Pids = None,
        network_policy: NetworkPolicyName = "off",
        allow: AllowList = None,
        publish: PublishList = None,
        secrets: SecretAttachList = None,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Create a persistent, isolated Linux workspace and wait until it is ready.

        Files under /workspace, installed packages and state survive between calls
        until workspace_delete (or the TTL). The first workspace of an env may pull or
        build its image first (progress notifications tell how far it is). Returns the workspace's id, name, env,
        backend, state, labels, network (policy, published ports on the host) and protections
        (each isolation layer, and why one is not enforced); pass the id (or name) as `workspace` to the other tools.
        """

        progress = heartbeat_for(call, "creating the workspace")

        def work() -> dict[str, Any]:
            self.context.allow_secrets(secret_names(secrets, ":"))
            seed = self.context.roots.confine(seed_path, param="seed_path") if seed_path is not None else None
            workspace = self.context.roost.create_workspace(
                env,
                name=name,
                labels=labels,
                seed_path=seed,
                ttl_seconds=ttl_seconds,
                vcpus=vcpus,
                mem_mib=mem_mib,
                pids=pids,
                network_policy=network_policy,
                allow=allow,
                publish=publish,
                secrets=secrets or (),
                ephemeral=False,
                progress=progress,
            )
            return workspace_view(workspace.info())

        return await offload(work, progress=progress)

    async def workspace_list(
        self,
        labels: Annotated[dict[str, str] | None, Field(description="Only workspaces with all these labels.")] = None,
        state: Annotated[str | None, Field(description="Only workspaces in this state, e.g. running.")] = None,
        backend: Annotated[str | None, Field(description="Only workspaces on this backend.")] = None,
    ) -> CallToolResult:
        """List workspaces with their state and health (expired ones are reaped first), all or those matching
        every filter given."""

        def work() -> dict[str, Any]:
            infos = self.context.roost.list_workspaces(labels=labels, state=state, backend=backend)
            return {"workspaces": [workspace_view(info) for info in infos]}

        return await offload(work)

    async def workspace_status(self, workspace: WorkspaceRef) -> CallToolResult:
        """Show one workspace's state, health (its agent is probed), labels, TTL and exec count.

        An `unhealthy` or `failed` workspace comes with a `hint` naming the tool that fixes it."""
        return await offload(lambda: workspace_view(self.context.workspace(workspace).info()))

    async def workspace_stats(self, workspace: WorkspaceRef) -> CallToolResult:
        """What a running workspace uses now: CPU seconds, memory now and at its peak, processes, bytes under
        /workspace and in total, with its limits. A field that cannot be known on its backend is null."""
        return await offload(lambda: self.context.workspace(workspace).stats().to_dict())

    async def workspace_update(
        self,
        workspace: WorkspaceRef,
        name: WorkspaceName = None,
        labels: Annotated[dict[str, str] | None, Field(description="Labels to add or overwrite.")] = None,
        remove_labels: Annotated[list[str] | None, Field(description="Label keys to remove.")] = None,
        ttl_seconds: Annotated[
            int | None,
            Field(
                description=f"New TTL in seconds, counted from now (1 to {arguments.MAX_TTL_SECONDS}).",
                ge=1,
                le=arguments.MAX_TTL_SECONDS,
            ),
        ] = None,
        clear_ttl: Annotated[bool, Field(description="Remove the TTL so the workspace lives until deleted.")] = False,
    ) -> CallToolResult:
        """Rename a workspace, change its labels, or set or clear its TTL."""

        def work() -> dict[str, Any]:
            handle = self.context.workspace(workspace)
            changes: dict[str, Any] = {"name": name, "labels": labels, "remove_labels": tuple(remove_labels or ())}
            if clear_ttl:
                changes["ttl_seconds"] = None
            elif ttl_seconds is not None:
                changes["ttl_seconds"] = ttl_seconds
            return workspace_view(handle.update(**changes))

        return await offload(work)

    async def workspace_delete(
        self,
        workspace: WorkspaceRef,
        force: Annotated[bool, Field(description="Delete even if the workspace is unhealthy or busy.")] = False,
    ) -> CallToolResult:
        """Delete a workspace: stop all its processes and remove all its files. This cannot be undone."""

        def work() -> dict[str, Any]:
            handle = self.context.workspace(workspace)
            handle.delete(force=force)
            return {"id": handle.id, "deleted": True}

        return await offload(work)

    async def workspace_stop(self, workspace: WorkspaceRef) -> CallToolResult:
        """Shut a workspace down to save resources; /workspace is kept and workspace_start boots it again.
        Its services stop and its shells close."""
        return await offload(lambda: workspace_view(self.context.workspace(workspace).stop()))

    async def workspace_start(self, workspace: WorkspaceRef) -> CallToolResult:
        """Boot a stopped workspace again; /workspace is as it was left."""
        return await offload(lambda: workspace_view(self.context.workspace(workspace).start()))

    async def workspace_restart(self, workspace: WorkspaceRef) -> CallToolResult:
        """Stop whatever is left of a workspace, then start it again: the way out of `unhealthy`
        (its agent died). Works on running, unhealthy and stopped workspaces; /workspace is kept,
        services and shells are not."""
        return await offload(lambda: workspace_view(self.context.workspace(workspace).restart()))

    async def workspace_fork(
        self,
        workspace: WorkspaceRef,
        count: Annotated[
            int,
            Field(
                description=f"How many new workspaces (1 to {arguments.MAX_FORK_CHILDREN}).",
                ge=1,
                le=arguments.MAX_FORK_CHILDREN,
            ),
        ] = 1,
        snapshot: Annotated[
            str | None, Field(description="Fork this snapshot of it (default: /workspace as it is now).")
        ] = None,
        name_prefix: Annotated[
            str | None, Field(description="Name the new workspaces PREFIX-1 .. PREFIX-N (default: unnamed).")
        ] = None,
        labels: Labels = None,
        secrets: SecretAttachList = None,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Make `count` new workspaces, each holding this workspace's /workspace as it is now (or as
        `snapshot` holds it) as its own baseline: to try several approaches from one prepared state.

        All of them are made, or none. Each has the same env, backend, limits, TTL and network policy, and
        its own id, hostname and machine-id; writes in one never show in another. Services kept by a
        restart policy start in each (each child's `last_start`); open shells, published ports and secrets
        not named again in `secrets` are not copied (the result counts them). Deleting this workspace or
        the snapshot later never touches the new ones; each one's `parent` names this workspace.
        """
        progress = heartbeat_for(call, "forking the workspace")

        def work() -> dict[str, Any]:
            self.context.allow_secrets(secret_names(secrets, ":"))
            forked = self.context.workspace(workspace).fork(
                count,
                snapshot=snapshot,
                name_prefix=name_prefix,
                labels=labels,
                secrets=secrets or (),
                progress=progress,
            )
            result = forked.result
            return {**result.to_dict(), "workspaces": [workspace_view(child) for child in result.workspaces]}

        return await offload(work, progress=progress)

    async def env_list(self) -> CallToolResult:
        """List the environments (images) a workspace can be created from, and whether each is ready."""

        def work() -> dict[str, Any]:
            return {"environments": [env.to_dict() for env in self.context.roost.envs()]}

        return await offload(work)
