"""Messages of the file ops: list, stat, read, write, delete; and one file's entry as both sides see it.

Imports: this package's `message` and `paging`, protocol's `messages` and `limits`; standard library only.
"""

from __future__ import annotations

from roost.protocol.limits import DEFAULT_FILE_READ_BYTES, MAX_FILE_OFFSET, MAX_FILE_READ_BYTES
from roost.protocol.messages import Op
from roost.protocol.ops.message import GUEST_ROOT, Message, OpMessages, check_read_size, message, wire
from roost.protocol.ops.paging import PageArgs, PageSummary

__all__ = [
    "FILE_TYPES",
    "MESSAGES",
    "FileDeleteArgs",
    "FileDeleteResult",
    "FileListArgs",
    "FileListResult",
    "FileReadArgs",
    "FileReadResult",
    "FileRecord",
    "FileStatArgs",
    "FileWriteArgs",
    "FileWriteResult",
]

FILE_TYPES = ("file", "dir", "symlink", "other")


@message
class FileRecord(Message):
    """One file as the agent reports it (a `file.list` record, the result of `file.stat`).

    `target`: where a symlink points (None for anything else, or a link replaced since it was listed).
    """

    OMITS_NULLS = True

    path: str = wire(name=True)
    name: str = wire(name=True)
    type: str = wire(choices=FILE_TYPES)
    size: int = wire(minimum=0)
    mode: int = wire(minimum=0)
    mtime: float = wire()
    target: str | None = wire(None, name=True)


@message
class FileStatArgs(Message):
    OP = Op.FILE_STAT
    path: str = wire(name=True)


@message
class FileListArgs(PageArgs):
    """The entries of `path` (all below it with `recursive`), in tree order; just `path` when not a directory."""

    OP = Op.FILE_LIST
    path: str = wire(GUEST_ROOT, name=True)
    recursive: bool = wire(False)


@message
class FileListResult(PageSummary):
    """Records: `FileRecord`. `path`: the directory listed, as the workspace names it."""

    path: str = wire(GUEST_ROOT, name=True)


@message
class FileReadArgs(Message):
    """Read up to `max_bytes` of a regular file from `offset` (the data is the RESPONSE body)."""

    OP = Op.FILE_READ
    path: str = wire(name=True)
    offset: int = wire(0, minimum=0, maximum=MAX_FILE_OFFSET, hint="read from a byte offset of 0 or more")
    max_bytes: int = wire(DEFAULT_FILE_READ_BYTES, minimum=0)

    def check(self) -> None:
        check_read_size(self.max_bytes, MAX_FILE_READ_BYTES, hint="read in pages with offset, or export the file")


@message
class FileReadResult(Message):
    path: str = wire(name=True)
    size: int = wire(minimum=0)
    offset: int = wire(minimum=0)
    length: int = wire(minimum=0)
    eof: bool = wire()


@message
class FileWriteArgs(Message):
    """Write the request's body to `path`, atomically; `mode` (default: the file's, or 0o644), `parents` made."""

    OP = Op.FILE_WRITE
    path: str = wire(name=True)
    mode: int | None = wire(None, minimum=0, maximum=0o7777, hint="a permission value such as 420 (0o644)")
    parents: bool = wire(True)


@message
class FileWriteResult(Message):
    path: str = wire(name=True)
    size: int = wire(minimum=0)
    mode: int = wire(minimum=0, maximum=0o7777)


@message
class FileDeleteArgs(Message):
    """Delete `path`; a non-empty directory only with `recursive`."""

    OP = Op.FILE_DELETE
    path: str = wire(name=True)
    recursive: bool = wire(False)


@message
class FileDeleteResult(Message):
    path: str = wire(name=True)
    deleted: bool = wire()
    type: str = wire(choices=FILE_TYPES)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.FILE_LIST: OpMessages(FileListArgs, FileListResult, FileRecord),
    Op.FILE_READ: OpMessages(FileReadArgs, FileReadResult),
    Op.FILE_WRITE: OpMessages(FileWriteArgs, FileWriteResult),
    Op.FILE_DELETE: OpMessages(FileDeleteArgs, FileDeleteResult),
    Op.FILE_STAT: OpMessages(FileStatArgs, FileRecord),
}
