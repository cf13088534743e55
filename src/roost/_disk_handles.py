"""The SDK's handle on a stopped workspace's disk (`ws.disk`): read, export, measure, check and grow it offline.

Imports: confinement, models, workspace.disk.operations and the bound workspace.
"""

from __future__ import annotations

from roost._bound import BoundWorkspace
from roost.confinement import HostArg
from roost.models import DiskCheck, DiskGrow, DiskUsage, ExportResult, FileContent, FileListing
from roost.workspace.disk import operations

__all__ = ["WorkspaceDisk"]


class WorkspaceDisk:
    """A stopped workspace's disk, read without booting it (`ws.disk`). Every method refuses a workspace
    that is not stopped (`workspace_running`: stop it first)."""

    def __init__(self, bound: BoundWorkspace) -> None:
        self._bound = bound

    def list(
        self,
        path: str | bytes = "/workspace",
        *,
        recursive: bool = False,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> FileListing:
        """The entries of `path` in tree order, symlinks with their targets (never followed); with `limit`,
        one page that `next_cursor` continues.

        Raises:
            RoostError: workspace_running, path_not_found, path_not_allowed, invalid_argument.
        """
        return self._bound(operations.list_disk, path, recursive, cursor=cursor, limit=limit)

    def read(self, path: str | bytes, *, offset: int = 0, max_bytes: int | None = None) -> FileContent:
        """Up to `max_bytes` (default 1 MiB, at most 8 MiB) of a file from `offset`.

        Raises:
            RoostError: workspace_running, path_not_found, is_a_directory, not_a_file, invalid_argument.
        """
        return self._bound(operations.read_disk, path, offset, max_bytes)

    def export(self, path: str | bytes, output: HostArg, *, fmt: str = "dir") -> ExportResult:
        """Copy a file or directory to a new host path (`dir`) or tar, by `export`'s mode and link rules.

        Raises:
            RoostError: workspace_running, path_not_found, output_exists, output_dir_missing, export_skipped.
        """
        return self._bound(operations.export_disk, path, output, fmt)

    def usage(self, path: str | bytes = "/workspace", *, top: int | None = None) -> DiskUsage:
        """What `path` takes on the disk and its `top` (default 10) largest directories.

        Raises:
            RoostError: workspace_running, path_not_found, invalid_argument.
        """
        return self._bound(operations.disk_usage, path, top)

    def check(self, *, repair: bool = False) -> DiskCheck:
        """Check the disk's filesystem (nothing written); `repair` fixes a copy and swaps it in on success.

        Raises:
            RoostError: workspace_running, unsupported (mock, sandbox), disk_tool_missing, disk_corrupt.
        """
        return self._bound(operations.check_disk, repair)

    def grow(self, size: int | str) -> DiskGrow:
        """Enlarge the disk image and its filesystem to `size` (bytes, or `4G`, `512M`); never shrinks.

        Raises:
            RoostError: workspace_running, unsupported (mock, sandbox), invalid_argument, disk_corrupt.
        """
        return self._bound(operations.grow_disk, size)
