"""Secret tools (full profile): attach, detach and list a workspace's secrets, and list the ones this server may use.

A model works with names only: it may attach and use just the secrets the
operator named when starting the server (`--allow-secret`), it never sees a
value (every output redacts them), and it cannot set one: `secret set` is
the operator's, on the host.

Imports the MCP layer's siblings, `roost.models` and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.mcp.result_schemas import Schema, listing
from roost.mcp.results import offload
from roost.mcp.toolkit import SecretAttachList, ToolGroup, WorkspaceRef, secret_names
from roost.models import AttachedSecret, SecretInfo

SecretName = Annotated[str, Field(description="The secret's name.")]


def _attached(workspace: str, found: list[AttachedSecret]) -> dict[str, Any]:
    return {"workspace": workspace, "secrets": [secret.to_dict() for secret in found]}


class SecretTools(ToolGroup):
    """The tools for the secrets attached to a workspace, by name only."""

    TOOLS = (
        ("secret_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("workspace_secret_add", ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
        ("workspace_secret_remove", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
        ("workspace_secret_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "secret_list": listing("secrets", SecretInfo),
        **dict.fromkeys(
            ("workspace_secret_add", "workspace_secret_remove", "workspace_secret_list"),
            listing("secrets", AttachedSecret, workspace=str),
        ),
    }

    async def secret_list(self) -> CallToolResult:
        """The host's secrets this server may use: name, modes, proxy hosts and when set (never a value)."""

        def work() -> dict[str, Any]:
            usable = self.context.allowed_secrets
            return {"secrets": [s.to_dict() for s in self.context.roost.secrets.list() if s.name in usable]}

        return await offload(work)

    async def workspace_secret_add(self, workspace: WorkspaceRef, secrets: SecretAttachList = None) -> CallToolResult:
        """Attach secrets to a workspace, live; its processes may then ask for them (secret_env, secret_files)."""

        def work() -> dict[str, Any]:
            self.context.allow_secrets(secret_names(secrets, ":"))
            handle = self.context.workspace(workspace)
            return _attached(handle.id, handle.secrets.add(*(secrets or ())))

        return await offload(work)

    async def workspace_secret_remove(self, workspace: WorkspaceRef, name: SecretName) -> CallToolResult:
        """Detach a secret: processes started from now on cannot ask for it (running ones keep what they got)."""

        def work() -> dict[str, Any]:
            self.context.allow_secrets([name])
            handle = self.context.workspace(workspace)
            return _attached(handle.id, handle.secrets.remove(name))

        return await offload(work)

    async def workspace_secret_list(self, workspace: WorkspaceRef) -> CallToolResult:
        """The secrets attached to a workspace and their modes (a proxy-mode one with its placeholder)."""

        def work() -> dict[str, Any]:
            handle = self.context.workspace(workspace)
            return _attached(handle.id, handle.secrets.list())

        return await offload(work)
