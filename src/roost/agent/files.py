"""File operations inside the workspace: list, stat, read, write, delete.

Every path goes through `WorkspacePaths`, so nothing outside /workspace is
reachable, by name or through a symlink. Writes are atomic (temp file in the
same directory, then rename): a reader never sees half a file.

Imports: protocol, the agent's own modules and the standard library only.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from typing import Any

from roost.agent.context import Reply, RequestContext
from roost.agent.ops import AgentRuntime
from roost.protocol import Code, OpError
from roost.protocol.limits import DEFAULT_FILE_READ_BYTES as DEFAULT_READ_BYTES
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.protocol.limits import MAX_FILE_READ_BYTES as MAX_READ_BYTES

MAX_LIST_ENTRIES = 100_000


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _entry(runtime: AgentRuntime, host_path: str, st: os.stat_result) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": runtime.paths.guest(host_path),
        "name": os.path.basename(host_path) or "/",
        "type": _kind(st.st_mode),
        "size": st.st_size,
        "mode": stat.S_IMODE(st.st_mode),
        "mtime": st.st_mtime,
    }
    if stat.S_ISLNK(st.st_mode):
        entry["target"] = os.readlink(host_path)
    return entry


def _lstat(path: str, guest: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        raise OpError(Code.PATH_NOT_FOUND, f"{guest} does not exist") from None
    except NotADirectoryError:
        raise OpError(Code.NOT_A_DIRECTORY, f"a parent of {guest} is not a directory") from None


def stat_file(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    guest = ctx.arg_str("path")
    host = runtime.paths.host(guest, follow_final=False)
    return Reply(_entry(runtime, host, _lstat(host, guest)))


def list_files(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    guest = ctx.arg_str("path", "/workspace")
    recursive = ctx.arg_bool("recursive", False)
    limit = ctx.arg_int("max_entries", 10_000, minimum=1)
    limit = min(limit, MAX_LIST_ENTRIES)
    host = runtime.paths.host(guest)
    st = _lstat(host, guest)
    if not stat.S_ISDIR(st.st_mode):
        return Reply({"path": runtime.paths.guest(host), "entries": [_entry(runtime, host, st)], "truncated": False})
    entries: list[dict[str, Any]] = []
    truncated = False
    pending = [host]
    while pending and not truncated:
        directory = pending.pop()
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except PermissionError:
            continue
        for child in children:
            if len(entries) >= limit:
                truncated = True
                break
            child_st = child.stat(follow_symlinks=False)
            entries.append(_entry(runtime, child.path, child_st))
            if recursive and stat.S_ISDIR(child_st.st_mode):
                pending.append(child.path)
    entries.sort(key=lambda e: str(e["path"]))
    return Reply({"path": runtime.paths.guest(host), "entries": entries, "truncated": truncated})


def read_file(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    guest = ctx.arg_str("path")
    offset = ctx.arg_int("offset", 0)
    if offset > MAX_FILE_OFFSET:
        raise OpError(Code.INVALID_ARGUMENT, f"offset must be at most {MAX_FILE_OFFSET}")
    max_bytes = ctx.arg_int("max_bytes", DEFAULT_READ_BYTES)
    if max_bytes > MAX_READ_BYTES:
        raise OpError(
            Code.READ_TOO_LARGE,
            f"max_bytes {max_bytes} is above the per-call limit of {MAX_READ_BYTES}",
            hint="read in pages with offset, or export the file",
        )
    host = runtime.paths.host(guest)
    st = _lstat(host, guest)
    if stat.S_ISDIR(st.st_mode):
        raise OpError(Code.IS_A_DIRECTORY, f"{guest} is a directory", hint="list it instead")
    if not stat.S_ISREG(st.st_mode):
        raise OpError(Code.INVALID_ARGUMENT, f"{guest} is not a regular file")
    try:
        with open(host, "rb") as fh:
            fh.seek(offset)
            data = fh.read(max_bytes)
    except PermissionError:
        raise OpError(Code.PERMISSION_DENIED, f"cannot read {guest}") from None
    end = offset + len(data)
    return Reply(
        {
            "path": runtime.paths.guest(host),
            "size": st.st_size,
            "offset": offset,
            "length": len(data),
            "eof": end >= st.st_size,
        },
        data,
    )


def write_file(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    guest = ctx.arg_str("path")
    mode = ctx.args.get("mode")
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777):
        raise OpError(Code.INVALID_ARGUMENT, "mode must be an integer permission value such as 420 (0o644)")
    parents = ctx.arg_bool("parents", True)
    host = runtime.paths.host(guest)
    if os.path.isdir(host):
        raise OpError(Code.IS_A_DIRECTORY, f"{guest} is a directory")
    directory = os.path.dirname(host)
    if not os.path.isdir(directory):
        if not parents:
            raise OpError(Code.PATH_NOT_FOUND, f"the directory of {guest} does not exist")
        try:
            os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise OpError(Code.NOT_A_DIRECTORY, f"a parent of {guest} is not a directory") from None
    fd, temp = tempfile.mkstemp(prefix=".roost-write-", dir=directory)
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in ctx.upload():
                fh.write(chunk)
                size += len(chunk)
        if mode is None:
            try:
                mode = stat.S_IMODE(os.stat(host).st_mode)
            except FileNotFoundError:
                mode = 0o644
        os.chmod(temp, mode)
        os.replace(temp, host)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return Reply({"path": runtime.paths.guest(host), "size": size, "mode": mode})


def delete_file(runtime: AgentRuntime, ctx: RequestContext) -> Reply:
    guest = ctx.arg_str("path")
    recursive = ctx.arg_bool("recursive", False)
    if runtime.paths.relative(guest) == "":
        raise OpError(Code.INVALID_ARGUMENT, "refusing to delete /workspace itself", hint="delete its contents instead")
    host = runtime.paths.host(guest, follow_final=False)
    st = _lstat(host, guest)
    if stat.S_ISDIR(st.st_mode):
        if recursive:
            shutil.rmtree(host)
        else:
            try:
                os.rmdir(host)
            except OSError:
                raise OpError(
                    Code.DIRECTORY_NOT_EMPTY, f"{guest} is a non-empty directory", hint="pass recursive to delete it"
                ) from None
    else:
        os.unlink(host)
    return Reply({"path": runtime.paths.guest(host), "deleted": True, "type": _kind(st.st_mode)})
