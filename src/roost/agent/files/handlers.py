"""File operations inside the workspace: list, stat, read, write, delete.

Every path is resolved by `WorkspacePaths` into an open parent directory
and a final name, and used only through those (the *at calls, O_NOFOLLOW):
nothing outside /workspace is reachable, by name, through a symlink, or by
swapping a directory for a symlink mid-operation. Writes are atomic (temp
file in the same directory, then rename): a reader never sees half a file.

Imports: protocol, the request core, the agent's `fs` layer and the standard library only.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
from collections.abc import Iterator
from contextlib import ExitStack

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.fs import dirfd
from roost.agent.fs.dirtree import Found, walk
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.record_page import RecordPage
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.ops.files import (
    FileDeleteArgs,
    FileDeleteResult,
    FileListArgs,
    FileListResult,
    FileReadArgs,
    FileReadResult,
    FileRecord,
    FileStatArgs,
    FileWriteArgs,
    FileWriteResult,
)
from roost.protocol.records import path_key


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _entry(rel: str, st: os.stat_result, dir_fd: int, name: str) -> FileRecord:
    """One file's record."""
    guest = WorkspacePaths.to_guest(rel)
    target = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:
            pass  # replaced since it was listed
    return FileRecord(
        path=guest,
        name=posixpath.basename(guest),
        type=_kind(st.st_mode),
        size=st.st_size,
        mode=stat.S_IMODE(st.st_mode),
        mtime=st.st_mtime,
        target=target,
    )


def _join(rel: str, child: str) -> str:
    return f"{rel}/{child}" if rel else child


def _open_error(agent: AgentState, exc: OSError, guest: str) -> Exception:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # looked up as one kind, opened as a link or another kind
        return OpError(Code.INVALID_ARGUMENT, f"{guest} changed while it was being opened", hint="try again")
    return agent.paths.error(exc, guest)


def _existing(st: os.stat_result | None, guest: str) -> os.stat_result:
    if st is None:
        raise OpError(Code.PATH_NOT_FOUND, f"{guest} does not exist")
    return st


def stat_file(agent: AgentState, args: FileStatArgs, ctx: RequestContext) -> HandlerResult:
    guest = args.path
    with agent.paths.locate(guest, follow_final=False) as found:
        return HandlerResult(_entry(found.rel, _existing(found.st, guest), found.dir_fd, found.name))


def list_files(agent: AgentState, args: FileListArgs, ctx: RequestContext) -> HandlerResult:
    """Stream the entries of `path` (a lone entry when it is not a directory) as records, in tree order.

    The cursor key is an entry's path below `path`.
    """
    guest = args.path
    page = RecordPage(ctx, args)
    with agent.paths.locate(guest) as found:
        st = _existing(found.st, guest)
        top = WorkspacePaths.to_guest(found.rel)
        if not stat.S_ISDIR(st.st_mode):
            key = path_key(posixpath.basename(found.rel))
            if not page.seen(key):
                page.add(key, _entry(found.rel, st, found.dir_fd, found.name))
            return HandlerResult(page.summary(FileListResult, path=top))
        try:
            fd = os.open(found.name, dirfd.DIR_READ_FLAGS, dir_fd=found.dir_fd)
        except OSError as exc:
            raise _open_error(agent, exc, guest) from None
    try:
        children = walk(fd, ordered=True, after=page.after) if args.recursive else _children(fd, page.after)
        for child in children:
            if not page.add(
                path_key(child.rel), _entry(_join(found.rel, child.rel), child.st, child.dir_fd, child.name)
            ):
                break
    finally:
        os.close(fd)
    return HandlerResult(page.summary(FileListResult, path=top))


def _children(fd: int, after: tuple[bytes, ...] | None) -> Iterator[Found]:
    """The entries of one directory in name order (by bytes), those after `after[0]` only when given."""
    with os.scandir(fd) as it:
        children = sorted(it, key=lambda e: os.fsencode(e.name))
    first = after[0] if after else None
    for child in children:
        if first is not None and os.fsencode(child.name) <= first:
            continue
        try:
            yield Found(child.name, child.name, fd, child.stat(follow_symlinks=False))
        except FileNotFoundError:
            continue  # gone since it was listed


def read_file(agent: AgentState, args: FileReadArgs, ctx: RequestContext) -> HandlerResult:
    guest, offset = args.path, args.offset
    with agent.paths.locate(guest) as found:
        st = _existing(found.st, guest)
        if stat.S_ISDIR(st.st_mode):
            raise OpError(Code.IS_A_DIRECTORY, f"{guest} is a directory", hint="list it instead")
        if not stat.S_ISREG(st.st_mode):
            raise OpError(Code.INVALID_ARGUMENT, f"{guest} is not a regular file")
        try:
            fd = os.open(found.name, dirfd.READ_FLAGS, dir_fd=found.dir_fd)
        except PermissionError:
            raise OpError(Code.PERMISSION_DENIED, f"cannot read {guest}") from None
        except OSError as exc:
            raise _open_error(agent, exc, guest) from None
        try:
            st = os.fstat(fd)  # what was opened, in case it changed since the lookup
            if not stat.S_ISREG(st.st_mode):
                raise OpError(Code.INVALID_ARGUMENT, f"{guest} is not a regular file")
            data = os.pread(fd, args.max_bytes, offset)
        finally:
            os.close(fd)
    end = offset + len(data)
    path = WorkspacePaths.to_guest(found.rel)
    result = FileReadResult(path=path, size=st.st_size, offset=offset, length=len(data), eof=end >= st.st_size)
    return HandlerResult(result, data)


def write_file(agent: AgentState, args: FileWriteArgs, ctx: RequestContext) -> HandlerResult:
    guest, mode, parents = args.path, args.mode, args.parents
    with ExitStack() as stack:
        try:
            found = stack.enter_context(agent.paths.locate(guest, make_parents=parents))
        except OpError as exc:
            if exc.code == Code.PATH_NOT_FOUND and not parents:
                raise OpError(Code.PATH_NOT_FOUND, f"the directory of {guest} does not exist") from None
            raise
        if found.st is not None and stat.S_ISDIR(found.st.st_mode):
            raise OpError(Code.IS_A_DIRECTORY, f"{guest} is a directory")
        if mode is None:
            mode = stat.S_IMODE(found.st.st_mode) if found.st is not None else 0o644
        size = _write_atomically(ctx, found.dir_fd, found.name, mode, guest)
    return HandlerResult(FileWriteResult(path=WorkspacePaths.to_guest(found.rel), size=size, mode=mode))


def _write_atomically(ctx: RequestContext, dir_fd: int, name: str, mode: int, guest: str) -> int:
    fd, temp = dirfd.create_temp(dir_fd, ".roost-write-")
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in ctx.upload():
                fh.write(chunk)
                size += len(chunk)
            os.fchmod(fh.fileno(), mode)
        try:
            dirfd.replace(dir_fd, temp, name)
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise OpError(Code.IS_A_DIRECTORY, f"{guest} is a directory") from None
            raise
    except BaseException:
        dirfd.discard(dir_fd, temp)
        raise
    return size


def delete_file(agent: AgentState, args: FileDeleteArgs, ctx: RequestContext) -> HandlerResult:
    guest, recursive = args.path, args.recursive
    if agent.paths.relative(guest) == "":
        raise OpError(Code.INVALID_ARGUMENT, "refusing to delete /workspace itself", hint="delete its contents instead")
    with agent.paths.locate(guest, follow_final=False) as found:
        st = _existing(found.st, guest)
        try:
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(found.name, dir_fd=found.dir_fd)
            elif recursive:
                shutil.rmtree(found.name, dir_fd=found.dir_fd)  # fd-based: never follows a link inside
            else:
                os.rmdir(found.name, dir_fd=found.dir_fd)
        except FileNotFoundError:
            raise OpError(Code.PATH_NOT_FOUND, f"{guest} does not exist") from None
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise OpError(
                    Code.DIRECTORY_NOT_EMPTY, f"{guest} is a non-empty directory", hint="pass recursive to delete it"
                ) from None
            if exc.errno in (errno.EISDIR, errno.ENOTDIR):
                raise OpError(Code.INVALID_ARGUMENT, f"{guest} changed while it was being deleted") from None
            raise
    return HandlerResult(
        FileDeleteResult(path=WorkspacePaths.to_guest(found.rel), deleted=True, type=_kind(st.st_mode))
    )


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.FILE_LIST: list_files,
    Op.FILE_READ: read_file,
    Op.FILE_WRITE: write_file,
    Op.FILE_DELETE: delete_file,
    Op.FILE_STAT: stat_file,
}
