"""Messages of the ops that move trees: archive import and export, and patch apply.

Imports: this package's `message` and `ignoring`, protocol's `messages`; standard library only.
"""

from __future__ import annotations

from roost.protocol.messages import Op
from roost.protocol.ops.ignoring import IgnoreArgs
from roost.protocol.ops.message import GUEST_ROOT, Message, OpMessages, message, wire

__all__ = [
    "MESSAGES",
    "ArchiveExportArgs",
    "ArchiveExportResult",
    "ArchiveImportArgs",
    "ArchiveImportResult",
    "PatchApplyArgs",
    "PatchApplyResult",
    "PatchedFileRecord",
]


@message
class ArchiveImportArgs(Message):
    """Unpack the uploaded tar (optionally compressed) into `dest`; with `delete`, remove what it does not hold."""

    OP = Op.ARCHIVE_IMPORT
    dest: str = wire(GUEST_ROOT, name=True)
    delete: bool = wire(False)


@message
class ArchiveImportResult(Message):
    dest: str = wire(name=True)
    files: int = wire(0, minimum=0)
    dirs: int = wire(0, minimum=0)
    symlinks: int = wire(0, minimum=0)
    bytes: int = wire(0, minimum=0)
    deleted: int = wire(0, minimum=0)


@message
class ArchiveExportArgs(IgnoreArgs):
    """Stream an uncompressed tar of `path` on the data channel, less what the ignore rules leave out."""

    OP = Op.ARCHIVE_EXPORT
    path: str = wire(GUEST_ROOT, name=True)


@message
class ArchiveExportResult(Message):
    """What went into the tar (`skipped`: files that could not be read; `changed`: files that changed as read)."""

    path: str = wire(name=True)
    files: int = wire(0, minimum=0)
    dirs: int = wire(0, minimum=0)
    symlinks: int = wire(0, minimum=0)
    bytes: int = wire(0, minimum=0)
    skipped: int = wire(0, minimum=0)
    changed: int = wire(0, minimum=0)


@message
class PatchApplyArgs(Message):
    """Apply the unified diff in `patch` (or the request's body or upload) all-or-nothing; `dry_run`: only check."""

    OP = Op.PATCH_APPLY
    patch: str | None = wire(None)
    dry_run: bool = wire(False)


@message
class PatchedFileRecord(Message):
    """One file a patch touched (a `patch.apply` record), in the patch's order."""

    path: str = wire(name=True)
    action: str = wire()
    hunks: int = wire(minimum=0)


@message
class PatchApplyResult(Message):
    """Records: `PatchedFileRecord` (`count` of them), sent once the whole patch has applied (or, with
    `dry_run`, would)."""

    count: int = wire(minimum=0)
    dry_run: bool = wire(False)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.ARCHIVE_IMPORT: OpMessages(ArchiveImportArgs, ArchiveImportResult),
    Op.ARCHIVE_EXPORT: OpMessages(ArchiveExportArgs, ArchiveExportResult),
    Op.PATCH_APPLY: OpMessages(PatchApplyArgs, PatchApplyResult, PatchedFileRecord),
}
