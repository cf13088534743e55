"""`cp` both ways, as `docker cp` does it, over the sync and export machinery.

Into a workspace: a host file or directory goes to DEST, or into DEST when
DEST is an existing directory (as DEST/<its name>). It travels as a tar the
agent checks member by member (links leaving it are refused, as for `sync
push`); the host side reads it without following a link.

Out of a workspace: a file or directory goes to a new host path, or into an
existing host directory as <dir>/<its name>. It is an `export` (format
`dir`): setuid/setgid/sticky and group/other write bits are stripped, links
leading out of the copied tree and special files are left out and listed,
and nothing on the host is ever written over.

Imports: arguments, confinement, errors, images.build (ProgressFn), models, protocol, store, workspace siblings and the standard library.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Iterator
from pathlib import Path

from roost import arguments
from roost.confinement import ConfinedPath, HostArg
from roost.errors import RoostError
from roost.images.build import ProgressFn
from roost.models import ExportResult, SyncResult
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.transfer import ArchiveImportArgs, ArchiveImportResult
from roost.store.records import WorkspaceRecord
from roost.workspace import operations, snapshots
from roost.workspace.engine import Engine
from roost.workspace.op_args import checked_args
from roost.workspace.transfer import copy_source

COPY_STEP = "copy"
MIB = 1024 * 1024
PROGRESS_EVERY = 16 * MIB  # a big tree reports as it goes; a small copy stays quiet


def _guest_dir(engine: Engine, record: WorkspaceRecord, path: str) -> bool:
    """Whether `path` is an existing directory in the workspace (a link to one is not followed)."""
    try:
        return operations.stat_file(engine, record, path).type == "dir"
    except RoostError as exc:
        if exc.code == "path_not_found":
            return False
        raise


def _host_name(source: HostArg) -> str:
    if isinstance(source, ConfinedPath):
        return source.parts[-1] if source.parts else Path(source.root).name
    return Path(os.path.abspath(source)).name


def _counted(chunks: Iterable[bytes], progress: ProgressFn | None) -> Iterator[bytes]:
    """Pass the chunks on, reporting each `PROGRESS_EVERY` bytes sent (the total is not known before the end)."""
    sent = reported = 0
    for chunk in chunks:
        sent += len(chunk)
        if progress is not None and sent - reported >= PROGRESS_EVERY:
            reported = sent
            progress(f"{COPY_STEP}: {sent // MIB} MiB sent", sent, 0)
        yield chunk


def copy_in(
    engine: Engine, record: WorkspaceRecord, source: HostArg, dest: str | bytes, progress: ProgressFn | None = None
) -> SyncResult:
    """Copy a host file or directory to `dest` in the workspace (into it when it is a directory).

    Raises:
        NotFound: seed_not_found.  InvalidArgument: not_a_file (a socket, fifo or device), path_not_allowed.
        RoostError: archive_rejected for unsafe members, path_outside_workspace (from the agent).
    """
    guest = arguments.guest_name(dest, "dest")
    name = _host_name(source)
    target = posixpath.join(GUEST_ROOT, guest, name) if _guest_dir(engine, record, guest) else guest
    target = posixpath.join(GUEST_ROOT, target)  # a relative DEST is under /workspace, as for every workspace path
    parent, leaf = posixpath.split(target.rstrip("/"))
    stream = copy_source(source, member=leaf, home=engine.home)
    into = target if stream.is_dir else (parent or "/")
    with checked_args():
        args = ArchiveImportArgs(dest=into, delete=False)
    result = engine.call(record, args, upload=_counted(stream, progress)).result_as(ArchiveImportResult)
    return SyncResult(
        dest=target, files=result.files, dirs=result.dirs, symlinks=result.symlinks, bytes=result.bytes, deleted=0
    )


def copy_out(engine: Engine, record: WorkspaceRecord, path: str | bytes, output: HostArg) -> ExportResult:
    """Copy a workspace file or directory to a new host path (into `output` when it is an existing directory).

    Raises:
        ConflictError: output_exists (nothing is written over).  InvalidArgument: output_dir_missing,
            path_not_allowed, export_skipped (a single entry that may not cross).
        RoostError: path_not_found, path_outside_workspace (from the agent).
    """
    guest = arguments.guest_name(path)
    if isinstance(output, str) and os.path.isdir(output):
        name = posixpath.basename(posixpath.normpath(guest))
        name = "workspace" if name in ("", ".", "..") else name
        output = os.path.join(output, name)
    return snapshots.export(engine, record, path, output, "dir")
