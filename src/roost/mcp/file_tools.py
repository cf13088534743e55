"""File tools: list, read (capped for the model), write, delete, apply a patch, push a host directory (profile `core`).

Imports the MCP layer's siblings, `roost.models` and the MCP types only.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from roost.errors import InvalidArgument
from roost.mcp.output_caps import MAX_MODEL_CHARS, cap_text, model_chars
from roost.mcp.progress import heartbeat_for
from roost.mcp.result_schemas import Schema, extended, result_schema
from roost.mcp.results import offload
from roost.mcp.toolkit import (
    Cursor,
    GuestPath,
    MaxOutputChars,
    ToolGroup,
    WorkspaceRef,
    guest_path,
    more_marker,
)
from roost.models import DeleteResult, FileContent, FileListing, PatchResult, SyncResult, WriteResult

DEFAULT_LIST_ENTRIES = 500
MAX_LIST_ENTRIES = 10_000

_LOCAL = ToolAnnotations(open_world_hint=False)

# What the listing tools (file_list, disk_list) take for a page's size, and what they and the reading
# tools (file_read, disk_read) return.
MaxEntries = Annotated[
    int,
    Field(
        description=f"Most entries per call (default {DEFAULT_LIST_ENTRIES}, at most {MAX_LIST_ENTRIES}); "
        "page through the rest with cursor."
    ),
]
LISTING_OUTPUT = extended(result_schema(FileListing), {"more": str}, optional=("more",))
CONTENT_OUTPUT = extended(result_schema(FileContent), {"content_truncated_for_model": bool})


def list_limit(max_entries: int) -> int:
    """Raises: InvalidArgument: max_entries out of 1..MAX_LIST_ENTRIES."""
    if not 1 <= max_entries <= MAX_LIST_ENTRIES:
        raise InvalidArgument(
            f"max_entries must be between 1 and {MAX_LIST_ENTRIES}", hint="page through the rest with cursor"
        )
    return max_entries


def capped_content(content: FileContent, max_output_chars: int | None, tool: str) -> dict[str, Any]:
    """A read as the model sees it: its text cut to head and tail past the budget, with how to read the rest."""
    limit = model_chars(max_output_chars)
    view = content.to_dict()

    def resume(head: int, omitted: int) -> str:
        size = min(omitted, MAX_MODEL_CHARS)
        return f"read the rest with {tool} path={view['path']} offset={content.offset + head} max_bytes={size}"

    capped = cap_text(view["content"], limit, resume)
    view["content"] = capped.text
    view["content_truncated_for_model"] = capped.truncated
    return view


class FileTools(ToolGroup):
    """The tools for list, read, write and delete files, apply a patch, push a host directory."""

    TOOLS = (
        ("file_list", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("file_read", ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        ("file_write", ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)),
        ("file_delete", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
        ("patch_apply", _LOCAL),
        ("workspace_sync_push", ToolAnnotations(destructive_hint=True, open_world_hint=False)),
    )
    OUTPUTS: ClassVar[dict[str, Schema]] = {
        "file_list": LISTING_OUTPUT,
        "file_read": CONTENT_OUTPUT,
        "file_write": result_schema(WriteResult),
        "file_delete": result_schema(DeleteResult),
        "patch_apply": result_schema(PatchResult),
        "workspace_sync_push": result_schema(SyncResult),
    }

    async def file_list(
        self,
        workspace: WorkspaceRef,
        path: GuestPath = "/workspace",
        recursive: Annotated[bool, Field(description="Walk subdirectories too.")] = False,
        max_entries: MaxEntries = DEFAULT_LIST_ENTRIES,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """List a directory in a workspace: path, name, type, size, mode, mtime (and link target) per entry,
        in tree order (a directory before what it holds).

        A listing of any size comes in pages of at most max_entries: when more remain, `truncated` is true,
        `next_cursor` is set and `more` says how to continue (the same call with cursor=next_cursor)."""

        def work() -> dict[str, Any]:
            files = self.context.workspace(workspace).files
            limit = list_limit(max_entries)
            listing = files.list(guest_path(path), recursive=recursive, cursor=cursor, limit=limit)
            return {**listing.to_dict(), **more_marker("file_list", listing.next_cursor, "entries")}

        return await offload(work)

    async def file_read(
        self,
        workspace: WorkspaceRef,
        path: GuestPath,
        offset: Annotated[int, Field(description="Byte offset to start reading at.")] = 0,
        max_bytes: Annotated[
            int | None, Field(description="Most bytes to read from offset (default 1 MiB, at most 8 MiB).")
        ] = None,
        max_output_chars: MaxOutputChars = None,
    ) -> CallToolResult:
        """Read a file in a workspace as text (invalid UTF-8 is replaced).

        Content longer than max_output_chars is cut to its head and tail with a
        marker line naming the offset to read the omitted part from;
        content_truncated_for_model is then true. `eof` says whether the read reached
        the end of the file.
        """

        def work() -> dict[str, Any]:
            content = self.context.workspace(workspace).files.read(guest_path(path), offset=offset, max_bytes=max_bytes)
            return capped_content(content, max_output_chars, "file_read")

        return await offload(work)

    async def file_write(
        self,
        workspace: WorkspaceRef,
        path: GuestPath,
        content: Annotated[str, Field(description="The whole new content of the file (UTF-8 text).")],
        mode: Annotated[int | None, Field(description="Permission bits, e.g. 493 for 0o755.")] = None,
    ) -> CallToolResult:
        """Write a text file in a workspace atomically, creating parent directories; replaces any existing file."""
        return await offload(
            lambda: self.context.workspace(workspace).files.write(guest_path(path), content, mode=mode).to_dict()
        )

    async def file_delete(
        self,
        workspace: WorkspaceRef,
        path: GuestPath,
        recursive: Annotated[bool, Field(description="Delete a directory and everything in it.")] = False,
    ) -> CallToolResult:
        """Delete a file, symlink or (with recursive) directory in a workspace."""
        return await offload(
            lambda: self.context.workspace(workspace).files.delete(guest_path(path), recursive=recursive).to_dict()
        )

    async def patch_apply(
        self,
        workspace: WorkspaceRef,
        patch: Annotated[
            str, Field(description="A unified diff (as from `diff -u` or `git diff`), paths relative to /workspace.")
        ],
        dry_run: Annotated[bool, Field(description="Check that the patch applies without changing anything.")] = False,
    ) -> CallToolResult:
        """Apply a unified diff to /workspace: all hunks or none. Returns each file touched and how."""
        return await offload(lambda: self.context.workspace(workspace).apply_patch(patch, dry_run=dry_run).to_dict())

    async def workspace_sync_push(
        self,
        workspace: WorkspaceRef,
        source: Annotated[
            str, Field(description="Host directory or tar file to copy; must lie under a root the server allows.")
        ],
        dest: GuestPath = "/workspace",
        delete: Annotated[bool, Field(description="Also remove files under dest that the source lacks.")] = False,
        call: Context[Any, Any] | None = None,
    ) -> CallToolResult:
        """Copy a host directory (or tar file) into a workspace, atomically from the workspace's point of view."""

        def work() -> dict[str, Any]:
            real = self.context.roots.confine(source, param="source")
            return (
                self.context.workspace(workspace)
                .sync_push(real, dest=guest_path(dest, "dest"), delete=delete)
                .to_dict()
            )

        return await offload(work, progress=heartbeat_for(call, "copying into the workspace"))
