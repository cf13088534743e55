"""Custom env tools (full profile): build one from a recipe, inspect one, remove one.

A recipe's `copy` sources are host paths: each must lie under a root the operator allowed
(`--allow-root`) and be reached without a symlink on the way.

Imports the MCP layer's siblings, `roost.errors`, `roost.models` and the MCP types only.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.errors import InvalidArgument
from roost.mcp.host_paths import PATH_NOT_ALLOWED
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema, object_schema, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import EnvName, ToolGroup
from roost.models import EnvInfo

NewEnvName = Annotated[str, Field(description="The custom env's name: NAME or NAME:TAG of a-z 0-9 . _ -.")]
Packages = Annotated[list[str] | None, Field(description="Packages to install (a version spec allowed).")]
CopyList = Annotated[
    list[str] | None,
    Field(description="SRC:DEST each: a host file or directory (under an allowed root) put at DEST in the env."),
]
RunList = Annotated[list[str] | None, Field(description="Shell command lines run in order, after the installs.")]
RecipeEnv = Annotated[
    dict[str, str] | None,
    Field(description="Variables set for every step and every process of the env's workspaces."),
]
AllowHosts = Annotated[list[str] | None, Field(description="Hosts the build may reach besides @debian @pypi @npm.")]


class EnvTools(ToolGroup):
    """The tools for custom envs."""

    TOOLS = (
        ("env_create", ToolAnnotations(idempotent_hint=True, open_world_hint=True)),
        ("env_inspect", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("env_remove", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "env_create": result_schema(EnvInfo),
        "env_inspect": result_schema(EnvInfo),
        "env_remove": object_schema({"removed": str}),
    }

    def _copy_source(self, entry: str) -> str:
        source, sep, dest = entry.rpartition(":")
        if not sep or not source:
            raise InvalidArgument(f"copy {entry!r} is not SRC:DEST", code="invalid_recipe")
        confined = self.context.roots.confine(source, param="copy")
        real = os.path.join(confined.root, *confined.parts)
        if os.path.realpath(real) != real:
            raise InvalidArgument(
                f"copy {source!r} passes through a symlink", code=PATH_NOT_ALLOWED, hint="name the real path"
            )
        return f"{real}:{dest}"

    async def env_create(
        self,
        name: NewEnvName,
        parent: EnvName,
        apt: Packages = None,
        pip: Packages = None,
        npm: Packages = None,
        copy: CopyList = None,
        run: RunList = None,
        env: RecipeEnv = None,
        allow_hosts: AllowHosts = None,
        replace: Annotated[bool, Field(description="Point an existing name at this recipe.")] = False,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Build a custom env from a recipe on top of `parent`; use its name as workspace_create's env.

        Steps run in the order apt, pip, npm, copy, run, in a sandbox of the parent with the
        network limited to Debian, PyPI, npm and `allow_hosts` (each step's output comes as
        progress notifications). The same recipe again is a cache hit. A failing step is the
        error build_failed with details step, exit_code, output_tail.
        """

        progress = heartbeat_for(call, "building the env")

        def work() -> dict[str, Any]:
            copies = [self._copy_source(entry) for entry in copy or ()]
            info = self.context.roost.create_env(
                name,
                from_=parent,
                apt=apt or (),
                pip=pip or (),
                npm=npm or (),
                copy=copies,
                run=run or (),
                env=env or {},
                allow_hosts=allow_hosts or (),
                replace=replace,
                progress=progress,
            )
            return info.to_dict()

        return await offload(work, progress=progress)

    async def env_inspect(self, env: EnvName) -> CallToolResult:
        """One env: its packages and cached image; for a custom env also its parent, recipe and layers."""
        return await offload(lambda: self.context.roost.inspect_env(env).to_dict())

    async def env_remove(self, name: NewEnvName) -> CallToolResult:
        """Remove a custom env (refused with env_in_use while a workspace or another custom env uses it)."""
        return await offload(lambda: {"removed": self.context.roost.remove_env(name).name})
