"""Change tools (core profile): diff, export, snapshots and reset.

Imports the MCP layer's siblings, `roost.models` and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.errors import InvalidArgument
from roost.mcp.output_caps import DEFAULT_MODEL_CHARS, MAX_MODEL_CHARS
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema, extended, object_schema, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import (
    NAMES_NOTE,
    Cursor,
    ToolGroup,
    WorkspaceRef,
    guest_path,
    more_marker,
)
from roost.models import DiffResult, ExportResult, ResetResult, SnapshotInfo, SnapshotPage

SnapshotName = Annotated[str, Field(description="Snapshot name: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}.")]
DEFAULT_DIFF_ENTRIES = 200
MAX_DIFF_ENTRIES = 2000
DEFAULT_SNAPSHOT_ENTRIES = 100
MAX_SNAPSHOT_ENTRIES = 1000
Exclude = Annotated[
    list[str] | None,
    Field(description="gitignore patterns relative to /workspace to leave out, e.g. ['node_modules/', '*.log']."),
]
Gitignore = Annotated[bool, Field(description="Also honour the workspace's .gitignore files and .git/info/exclude.")]


def _entries(value: int, limit: int) -> int:
    if not 1 <= value <= limit:
        raise InvalidArgument(f"max_entries must be between 1 and {limit}", hint="page through the rest with cursor")
    return value


class ChangeTools(ToolGroup):
    """The tools for diff, export, snapshots and reset."""

    TOOLS = (
        ("workspace_diff", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("workspace_export", ToolAnnotations(open_world_hint=False)),
        ("snapshot_create", ToolAnnotations(open_world_hint=False)),
        ("snapshot_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("snapshot_delete", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
        ("workspace_reset", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "workspace_diff": extended(result_schema(DiffResult), {"more": str}, optional=("more",)),
        "workspace_export": result_schema(ExportResult),
        "snapshot_create": result_schema(SnapshotInfo),
        "snapshot_list": extended(result_schema(SnapshotPage), {"more": str}, optional=("more",)),
        "snapshot_delete": object_schema({"deleted": str}),
        "workspace_reset": result_schema(ResetResult),
    }

    async def workspace_diff(
        self,
        workspace: WorkspaceRef,
        against: Annotated[str, Field(description="`baseline` (the state at create) or a snapshot name.")] = "baseline",
        paths: Annotated[list[str] | None, Field(description=f"Only changes under these paths. {NAMES_NOTE}")] = None,
        stat: Annotated[bool, Field(description="Only the summary of changed paths, no patch text.")] = False,
        max_bytes: Annotated[
            int, Field(description="Patch text per call.", ge=1024, le=MAX_MODEL_CHARS)
        ] = DEFAULT_MODEL_CHARS,
        max_entries: Annotated[
            int,
            Field(
                description=f"Most changed paths per call (default {DEFAULT_DIFF_ENTRIES}, at most {MAX_DIFF_ENTRIES})."
            ),
        ] = DEFAULT_DIFF_ENTRIES,
        cursor: Cursor = None,
        exclude: Exclude = None,
        gitignore: Gitignore = False,
        include_git_dir: Annotated[
            bool | None, Field(description="Keep .git (default: left out only when gitignore is on).")
        ] = None,
    ) -> CallToolResult:
        """What changed in /workspace: a summary per path (added, modified, deleted, type_changed,
        mode_changed) and a git-style patch, in tree order; `counts` totals every change. Leave build
        output and dependencies out with exclude or gitignore.

        A diff of any size comes in pages: a page ends after max_entries paths, or before a path whose
        patch would pass max_bytes (a page's first patch alone is cut to fit, and says so). When more
        remain, `next_cursor` is set and `more` says how to continue (the same call, the same exclude
        and gitignore, with cursor=next_cursor)."""

        def work() -> dict[str, Any]:
            result = self.context.workspace(workspace).diff(
                against=against,
                paths=[guest_path(p, "paths") for p in paths or ()],
                stat=stat,
                max_bytes=max_bytes,
                cursor=cursor,
                limit=_entries(max_entries, MAX_DIFF_ENTRIES),
                exclude=exclude or (),
                gitignore=gitignore,
                include_git_dir=include_git_dir,
            )
            return {**result.to_dict(), **more_marker("workspace_diff", result.next_cursor, "changed paths")}

        return await offload(work)

    async def workspace_export(
        self,
        workspace: WorkspaceRef,
        path: Annotated[str, Field(description=f"File or directory in /workspace. {NAMES_NOTE}")],
        output_path: Annotated[str, Field(description="New host path to write (under the server's allowed roots).")],
        format: Annotated[
            Literal["dir", "tar", "patch"], Field(description="dir: the files; tar: an archive; patch: the diff.")
        ] = "dir",
        exclude: Exclude = None,
        gitignore: Gitignore = False,
        include_git_dir: Annotated[
            bool | None, Field(description="Keep .git (default: left out of a patch and when gitignore is on).")
        ] = None,
    ) -> CallToolResult:
        """Copy a workspace path out to a new host path, or write its diff against the baseline as a patch.

        setuid/setgid and group/other write bits are stripped; symlinks that are absolute or lead out of
        the exported tree, and special files, are left out and listed in `skipped`. exclude and
        gitignore leave paths out; .git never goes into a patch unless include_git_dir is true."""

        def work() -> dict[str, Any]:
            target = self.context.roots.confine(output_path, param="output_path", output=True)
            result = (
                self.context.workspace(workspace)
                .export(
                    guest_path(path),
                    target,
                    format=format,
                    exclude=exclude or (),
                    gitignore=gitignore,
                    include_git_dir=include_git_dir,
                )
                .to_dict()
            )
            result["path"] = output_path  # as the caller named it, not the resolved host path
            return result

        return await offload(work)

    async def snapshot_create(
        self, workspace: WorkspaceRef, name: SnapshotName, call: Context[Any, Any] | None = None
    ) -> CallToolResult:
        """Checkpoint /workspace under a name (cheap: unchanged content is stored once)."""
        return await offload(
            lambda: self.context.workspace(workspace).snapshots.create(name).to_dict(),
            progress=heartbeat_for(call, "taking the snapshot"),
        )

    async def snapshot_list(
        self,
        workspace: WorkspaceRef,
        max_entries: Annotated[
            int,
            Field(
                description=f"Most snapshots per call (default {DEFAULT_SNAPSHOT_ENTRIES}, at most {MAX_SNAPSHOT_ENTRIES})."
            ),
        ] = DEFAULT_SNAPSHOT_ENTRIES,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """List snapshots, the baseline first, then by creation time. When more remain than max_entries,
        `next_cursor` is set and `more` says how to continue (the same call with cursor=next_cursor)."""

        def work() -> dict[str, Any]:
            limit = _entries(max_entries, MAX_SNAPSHOT_ENTRIES)
            page = self.context.workspace(workspace).snapshots.page(cursor=cursor, limit=limit)
            return {**page.to_dict(), **more_marker("snapshot_list", page.next_cursor, "snapshots")}

        return await offload(work)

    async def snapshot_delete(self, workspace: WorkspaceRef, name: SnapshotName) -> CallToolResult:
        """Delete a snapshot (not the baseline)."""

        def work() -> dict[str, Any]:
            self.context.workspace(workspace).snapshots.delete(name)
            return {"deleted": name}

        return await offload(work)

    async def workspace_reset(
        self,
        workspace: WorkspaceRef,
        snapshot: Annotated[str, Field(description="`baseline` or a snapshot name.")] = "baseline",
    ) -> CallToolResult:
        """Restore /workspace exactly to the baseline or a snapshot. Services are stopped and shells
        closed first; the result lists them."""
        return await offload(lambda: self.context.workspace(workspace).reset(snapshot=snapshot).to_dict())
