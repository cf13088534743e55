"""Workspace operations that go to the agent: exec (with history), files, sync, patch.

Each function turns typed arguments into one agent call and the reply into
a model value. Exec results are also written to the workspace's bounded
history, so `workspace logs` and output paging work from any later process.

Imports: arguments, models, protocol (the op messages), store, workspace siblings, errors.
"""

from __future__ import annotations

import dataclasses
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from roost import arguments
from roost.confinement import HostArg
from roost.errors import InvalidArgument, RoostError
from roost.models import (
    DeleteResult,
    ExecRecord,
    ExecResult,
    FileContent,
    FileEntry,
    FileListing,
    PatchedFile,
    PatchResult,
    SyncResult,
    WriteResult,
)
from roost.protocol.limits import DEFAULT_EXEC_OUTPUT_BYTES, MAX_FILE_OFFSET, MAX_FILE_READ_BYTES
from roost.protocol.ops.execs import ExecArgs, ExecOutcome
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
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.transfer import (
    ArchiveImportArgs,
    ArchiveImportResult,
    PatchApplyArgs,
    PatchApplyResult,
    PatchedFileRecord,
)
from roost.store.history import ExecHistory
from roost.store.records import WorkspaceRecord, utc_now
from roost.workspace.engine import Engine
from roost.workspace.op_args import checked_args
from roost.workspace.secrets import SecretUses, grants_for
from roost.workspace.streamed import Streamed
from roost.workspace.transfer import tar_stream

DEFAULT_MAX_OUTPUT = DEFAULT_EXEC_OUTPUT_BYTES
# Per stream, what the exec history keeps of any exec for later paging.
HISTORY_CAP = 4 * 1024 * 1024
OutputCallback = Callable[[str, bytes], None]


@dataclass(frozen=True)
class ExecSpec:
    command: str | Sequence[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    stdin: bytes | None = None
    max_output_bytes: int | None = DEFAULT_MAX_OUTPUT
    secret_env: SecretUses = ()
    secret_files: SecretUses = ()

    def args(self) -> ExecArgs:
        """The agent's arguments, every one checked first.

        Raises:
            InvalidArgument: a bad command, cwd, env, timeout, stdin or output cap.
        """
        command = arguments.command(self.command)
        env = arguments.env_vars(self.env)
        if self.max_output_bytes is not None:
            arguments.whole_number(self.max_output_bytes, "max_output_bytes", 0, MAX_FILE_OFFSET, unit="bytes")
        cwd = GUEST_ROOT if self.cwd is None else arguments.guest_name(self.cwd, "cwd")
        timeout = arguments.exec_timeout(self.timeout)
        if self.stdin is not None and not isinstance(self.stdin, bytes | bytearray):
            raise InvalidArgument("stdin must be text or bytes", hint="e.g. stdin='input\\n'")
        with checked_args():
            return ExecArgs(
                argv=None if isinstance(command, str) else tuple(command),
                command=command if isinstance(command, str) else None,
                cwd=cwd,
                env=env,
                timeout=timeout,
                max_output_bytes=self.max_output_bytes,
            )

    def display(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)


def run_exec(
    engine: Engine,
    record: WorkspaceRecord,
    spec: ExecSpec,
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
) -> ExecResult:
    """Run a command to completion in the workspace and log it; setting `cancel` kills it.

    Raises:
        RoostError: command_not_found, path errors, or the agent going away; cancelled.
    """
    args = spec.args()
    granted = grants_for(engine.home, record, spec.secret_env, spec.secret_files)
    if granted:
        args = dataclasses.replace(args, secrets=granted)
    captured: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    # A caller who streams already has every byte: keep only what the
    # result and the history need, so large outputs flow at pipe speed.
    keep = spec.max_output_bytes if spec.max_output_bytes is not None else (HISTORY_CAP if on_output else None)

    # Kept less than it was sent (the cap): compared with what was sent, not with the command's byte
    # count, which redacted secrets make differ from what arrives.
    cut = {"stdout": False, "stderr": False}

    def on_data(channel: str, data: bytes) -> None:
        buf = captured.get(channel)
        if buf is not None:
            room = len(data) if keep is None else max(0, keep - len(buf))
            buf += data[:room]
            cut[channel] = cut[channel] or room < len(data)
        if on_output is not None:
            on_output(channel, data)

    started_at = utc_now()
    try:
        upload = [spec.stdin] if spec.stdin is not None else None
        if cancel is None:
            reply = engine.call(record, args, upload=upload, on_data=on_data)
        else:
            reply = engine.call_cancellable(record, args, cancel, upload=upload, on_data=on_data)
        outcome = reply.result_as(ExecOutcome)
    except RoostError as exc:
        _log(engine, record, spec, started_at, None, captured, error=exc.code)
        raise
    exec_id, history_error = _log(engine, record, spec, started_at, outcome, captured)
    return ExecResult(
        exit_code=outcome.exit_code,
        signal=outcome.signal,
        timed_out=outcome.timed_out,
        duration_ms=float(outcome.duration_ms),
        stdout=captured["stdout"].decode("utf-8", errors="replace"),
        stderr=captured["stderr"].decode("utf-8", errors="replace"),
        stdout_bytes=outcome.stdout_bytes,
        stderr_bytes=outcome.stderr_bytes,
        stdout_truncated=outcome.stdout_truncated or cut["stdout"],
        stderr_truncated=outcome.stderr_truncated or cut["stderr"],
        exec_id=exec_id,
        history_error=history_error,
    )


def _log(
    engine: Engine,
    record: WorkspaceRecord,
    spec: ExecSpec,
    started_at: str,
    outcome: ExecOutcome | None,
    captured: dict[str, bytearray],
    *,
    error: str | None = None,
) -> tuple[int | None, str | None]:
    """Append the exec to the history; return its id, or None and why it could not be saved.

    Best effort: the command has run, so a history that cannot be written (a
    full disk, a workspace deleted meanwhile) never turns its result into an error.
    """
    result = outcome or ExecOutcome()
    history = ExecHistory(engine.store.dir(record.id))
    redactor = engine.redactor(record)
    try:
        with engine.store.lock(record.id):
            # The counter lives in the history (records of older roosts kept it themselves): no record rewrite.
            exec_id = max(record.exec_count, history.last_id()) + 1
            history.append(
                ExecRecord(
                    exec_id=exec_id,
                    started_at=started_at,
                    command=spec.display() if redactor is None else redactor.redact_text(spec.display()),
                    cwd=spec.cwd or "/workspace",
                    exit_code=result.exit_code,
                    signal=result.signal,
                    timed_out=result.timed_out,
                    duration_ms=float(result.duration_ms),
                    stdout_bytes=result.stdout_bytes,
                    stderr_bytes=result.stderr_bytes,
                    error=error,
                ),
                bytes(captured["stdout"][:HISTORY_CAP]),
                bytes(captured["stderr"][:HISTORY_CAP]),
            )
            return exec_id, None
    except RoostError as exc:
        return None, f"{exc.code}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")


def file_entry(found: FileRecord) -> FileEntry:
    """A file as the models show it, from the agent's record."""
    return FileEntry(
        path=found.path,
        name=found.name,
        type=found.type,
        size=found.size,
        mode=found.mode,
        mtime=float(found.mtime),
        target=found.target,
    )


def _list_args(path: str | bytes, recursive: bool, cursor: str | None = None, limit: int | None = None) -> FileListArgs:
    where = arguments.guest_name(path)
    with checked_args():
        return FileListArgs(path=where, recursive=bool(recursive), cursor=cursor, limit=limit)


def iter_files(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, recursive: bool = False
) -> Streamed[FileEntry]:
    """Every entry of `path` in tree order (just `path` when it is not a directory), as they arrive.

    Its `summary`: `path` (the directory listed, as the workspace names it) and `count`.

    Raises:
        InvalidArgument: a bad path, at once.
        RoostError: path_not_found, path_outside_workspace and the agent's other errors, when iterated.
    """
    return Streamed(engine, record, _list_args(path, recursive), FileRecord, file_entry)


def list_files(
    engine: Engine,
    record: WorkspaceRecord,
    path: str | bytes,
    recursive: bool = False,
    *,
    cursor: str | None = None,
    limit: int | None = None,
) -> FileListing:
    """The entries of `path`: all of them, or with `limit` one page that `next_cursor` continues.

    Raises:
        InvalidArgument: a bad path, cursor or limit, before any call.
        RoostError: as `iter_files`.
    """
    page = _list_args(
        path,
        recursive,
        arguments.list_cursor(cursor),
        arguments.optional_count(limit, "limit", MAX_FILE_OFFSET),
    )
    with engine.records(record, page) as stream:
        entries = tuple(file_entry(item) for item in stream.records_as(FileRecord))
        result = stream.result_as(FileListResult)
    next_cursor = result.next_cursor
    return FileListing(result.path, entries, next_cursor is not None, next_cursor or None)


def stat_file(engine: Engine, record: WorkspaceRecord, path: str | bytes) -> FileEntry:
    where = arguments.guest_name(path)
    with checked_args():
        args = FileStatArgs(path=where)
    return file_entry(engine.call(record, args).result_as(FileRecord))


def read_file(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, offset: int = 0, max_bytes: int | None = None
) -> FileContent:
    """Raises: InvalidArgument: a bad path, offset or size (read_too_large above 8 MiB), before any call."""
    where = arguments.guest_name(path)
    start = arguments.file_offset(offset)
    size = None if max_bytes is None else arguments.read_size(max_bytes, "max_bytes", MAX_FILE_READ_BYTES)
    with checked_args():
        args = FileReadArgs(path=where, offset=start) if size is None else FileReadArgs(where, start, size)
    reply = engine.call(record, args)
    result = reply.result_as(FileReadResult)
    data = reply.body
    redactor = engine.redactor(record)  # here, not in the engine: the file's own length pages the reads
    shown = data if redactor is None else redactor.redact(data)
    return FileContent(result.path, result.size, result.offset, shown, result.eof, read_bytes=len(data))


def write_file(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, data: bytes, mode: int | None = None
) -> WriteResult:
    where = arguments.guest_name(path)
    checked_mode = None if mode is None else arguments.whole_number(mode, "mode", 0, 0o7777, example=0o644)
    if not isinstance(data, bytes | bytearray):
        raise InvalidArgument(f"file content must be text or bytes, not {type(data).__name__}", hint="e.g. 'hello\\n'")
    with checked_args():
        args = FileWriteArgs(path=where, mode=checked_mode)
    result = engine.call(record, args, upload=[data]).result_as(FileWriteResult)
    return WriteResult(result.path, result.size, result.mode)


def delete_file(engine: Engine, record: WorkspaceRecord, path: str | bytes, recursive: bool = False) -> DeleteResult:
    where = arguments.guest_name(path)
    with checked_args():
        args = FileDeleteArgs(path=where, recursive=bool(recursive))
    result = engine.call(record, args).result_as(FileDeleteResult)
    return DeleteResult(result.path, result.type)


def sync_push(
    engine: Engine, record: WorkspaceRecord, source: HostArg, dest: str | bytes = "/workspace", delete: bool = False
) -> SyncResult:
    """Copy a host directory or tar into the workspace (validated, then applied).

    Raises:
        NotFound: seed_not_found for a missing source.
        RoostError: archive_rejected for unsafe members (nothing is changed).
    """
    where = arguments.guest_name(dest, "dest")
    with checked_args():
        args = ArchiveImportArgs(dest=where, delete=bool(delete))
    stream = tar_stream(source, home=engine.home)
    result = engine.call(record, args, upload=stream).result_as(ArchiveImportResult)
    return SyncResult(
        dest=result.dest,
        files=result.files,
        dirs=result.dirs,
        symlinks=result.symlinks,
        bytes=result.bytes,
        deleted=result.deleted,
    )


def apply_patch(engine: Engine, record: WorkspaceRecord, patch: str | bytes, dry_run: bool = False) -> PatchResult:
    """Apply a unified diff all-or-nothing; the patch is uploaded, so it may be of any size.

    Raises:
        RoostError: patch_rejected naming the first hunk that does not apply.
    """
    if not isinstance(patch, str | bytes) or not patch.strip():
        raise InvalidArgument("the patch is empty", hint="give the text of a unified diff, e.g. from git diff")
    # A patch names files by their bytes: text that came from bytes (os.fsdecode) goes back to them.
    data = patch if isinstance(patch, bytes) else patch.encode("utf-8", "surrogateescape")
    with checked_args():
        args = PatchApplyArgs(dry_run=bool(dry_run))
    with engine.records(record, args, upload=[data]) as stream:
        files = tuple(PatchedFile(f.path, f.action, f.hunks) for f in stream.records_as(PatchedFileRecord))
        result = stream.result_as(PatchApplyResult)
    return PatchResult(files, result.dry_run)
