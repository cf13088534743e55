"""Disk tools (profile `core`): a stopped workspace's disk listed, read, exported, measured, checked and
grown without booting it.

Imports the MCP layer's siblings, `roost.models` and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.mcp.file_tools import (
    CONTENT_OUTPUT,
    DEFAULT_LIST_ENTRIES,
    LISTING_OUTPUT,
    MaxEntries,
    capped_content,
    list_limit,
)
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import NAMES_NOTE, Cursor, MaxOutputChars, ToolGroup, WorkspaceRef, guest_path, more_marker
from roost.models import DiskCheck, DiskGrow, DiskUsage, ExportResult

DiskPath = Annotated[
    str,
    Field(description=f"A path on the workspace's disk, absolute (/etc/hosts) or relative to /workspace. {NAMES_NOTE}"),
]


class DiskTools(ToolGroup):
    """The tools for `workspace disk`."""

    TOOLS = (
        ("disk_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("disk_read", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("disk_export", ToolAnnotations(open_world_hint=False)),
        ("disk_usage", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("disk_check", ToolAnnotations(open_world_hint=False)),
        ("disk_grow", ToolAnnotations(open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "disk_list": LISTING_OUTPUT,
        "disk_read": CONTENT_OUTPUT,
        "disk_export": result_schema(ExportResult),
        "disk_usage": result_schema(DiskUsage),
        "disk_check": result_schema(DiskCheck),
        "disk_grow": result_schema(DiskGrow),
    }

    async def disk_list(
        self,
        workspace: WorkspaceRef,
        path: DiskPath = "/workspace",
        recursive: Annotated[bool, Field(description="Walk subdirectories too.")] = False,
        max_entries: MaxEntries = DEFAULT_LIST_ENTRIES,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """List a directory on a stopped workspace's disk, read without booting it: path, name, type, size,
        mode, mtime per entry in tree order (stop the workspace first: workspace_stop); a symlink shows its target and is never followed.

        When more remain than max_entries, `next_cursor` is set and `more` says how to continue."""

        def work() -> dict[str, Any]:
            disk = self.context.workspace(workspace).disk
            listing = disk.list(guest_path(path), recursive=recursive, cursor=cursor, limit=list_limit(max_entries))
            return {**listing.to_dict(), **more_marker("disk_list", listing.next_cursor, "entries")}

        return await offload(work)

    async def disk_read(
        self,
        workspace: WorkspaceRef,
        path: DiskPath,
        offset: Annotated[int, Field(description="Byte offset to start reading at.")] = 0,
        max_bytes: Annotated[
            int | None, Field(description="Most bytes to read from offset (default 1 MiB, at most 8 MiB).")
        ] = None,
        max_output_chars: MaxOutputChars = None,
    ) -> CallToolResult:
        """Read a file on a stopped workspace's disk as text (invalid UTF-8 is replaced); `eof` says whether
        the read reached its end. Content longer than max_output_chars is cut to head and tail with a marker
        naming the offset to read the rest from."""

        def work() -> dict[str, Any]:
            content = self.context.workspace(workspace).disk.read(guest_path(path), offset=offset, max_bytes=max_bytes)
            return capped_content(content, max_output_chars, "disk_read")

        return await offload(work)

    async def disk_export(
        self,
        workspace: WorkspaceRef,
        path: DiskPath,
        output_path: Annotated[str, Field(description="New host path to write (under the server's allowed roots).")],
        format: Annotated[Literal["dir", "tar"], Field(description="dir: the files; tar: an archive.")] = "dir",
    ) -> CallToolResult:
        """Copy a file or directory from a stopped workspace's disk to a new host path, by workspace_export's
        rules: setuid/setgid and group/other write bits stripped; absolute symlinks, links leading out of the
        exported tree and special files left out and listed in `skipped`."""

        def work() -> dict[str, Any]:
            target = self.context.roots.confine(output_path, param="output_path", output=True)
            result = self.context.workspace(workspace).disk.export(guest_path(path), target, fmt=format).to_dict()
            result["path"] = output_path  # as the caller named it, not the resolved host path
            return result

        return await offload(work)

    async def disk_usage(
        self,
        workspace: WorkspaceRef,
        path: DiskPath = "/workspace",
        top: Annotated[int | None, Field(description="How many of the largest directories (default 10).")] = None,
    ) -> CallToolResult:
        """What fills a stopped workspace's disk under path, like du: the total and the largest directories
        (allocated bytes; a sparse file's holes take nothing)."""
        return await offload(lambda: self.context.workspace(workspace).disk.usage(guest_path(path), top=top).to_dict())

    async def disk_check(
        self,
        workspace: WorkspaceRef,
        repair: Annotated[
            bool, Field(description="Repair a copy of the disk and put it in place only if that succeeded.")
        ] = False,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Check the filesystem of a stopped microVM workspace's disk (nothing is written unless repair).
        Workspaces whose files are host directories (mock, sandbox) have none: unsupported."""
        return await offload(
            lambda: self.context.workspace(workspace).disk.check(repair=repair).to_dict(),
            progress=heartbeat_for(call, "checking the disk"),
        )

    async def disk_grow(
        self,
        workspace: WorkspaceRef,
        size: Annotated[str, Field(description="The new size, e.g. '4G' or '512M' (binary units); never smaller.")],
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Enlarge a stopped microVM workspace's disk image and its filesystem to size."""
        return await offload(
            lambda: self.context.workspace(workspace).disk.grow(size).to_dict(),
            progress=heartbeat_for(call, "growing the disk"),
        )
