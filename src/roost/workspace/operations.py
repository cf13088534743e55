"""Workspace operations that go to the agent: exec (with history), files, sync, patch.

Each function turns typed arguments into one agent call and the reply into
a model value. Exec results are also written to the workspace's bounded
history, so `workspace logs` and output paging work from any later process.

Imports: models, protocol, store, workspace siblings, errors.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from roost.protocol import Op
from roost.protocol.limits import DEFAULT_EXEC_OUTPUT_BYTES, MAX_FILE_OFFSET, MAX_FILE_READ_BYTES
from roost.protocol.ops.execs import ExecArgs, ExecOutcome
from roost.protocol.ops.message import GUEST_ROOT
from roost.store.history import ExecHistory
from roost.store.records import WorkspaceRecord, utc_now
from roost.workspace.engine import Engine
from roost.workspace.op_args import checked_args
from roost.workspace.streamed import Streamed
from roost.workspace.transfer import tar_stream
from roost.workspace.wire_names import received_name, received_opt_name

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
    engine: Engine, record: WorkspaceRecord, spec: ExecSpec, on_output: OutputCallback | None = None
) -> ExecResult:
    """Run a command to completion in the workspace and log it.

    Raises:
        RoostError: command_not_found, path errors, or the agent going away.
    """
    args = spec.args()
    captured: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    # A caller who streams already has every byte: keep only what the
    # result and the history need, so large outputs flow at pipe speed.
    keep = spec.max_output_bytes if spec.max_output_bytes is not None else (HISTORY_CAP if on_output else None)

    def on_data(channel: str, data: bytes) -> None:
        buf = captured.get(channel)
        if buf is not None and (keep is None or len(buf) < keep):
            buf += data if keep is None else data[: keep - len(buf)]
        if on_output is not None:
            on_output(channel, data)

    started_at = utc_now()
    try:
        reply = engine.call(record, args, upload=[spec.stdin] if spec.stdin is not None else None, on_data=on_data)
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
        stdout_truncated=len(captured["stdout"]) < outcome.stdout_bytes,
        stderr_truncated=len(captured["stderr"]) < outcome.stderr_bytes,
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
    try:
        with engine.store.lock(record.id):
            # The counter lives in the history (records of older roosts kept it themselves): no record rewrite.
            exec_id = max(record.exec_count, history.last_id()) + 1
            history.append(
                ExecRecord(
                    exec_id=exec_id,
                    started_at=started_at,
                    command=spec.display(),
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


def _entry(data: dict[str, Any]) -> FileEntry:
    return FileEntry(
        path=received_name(data["path"]),
        name=received_name(data["name"]),
        type=str(data["type"]),
        size=int(data["size"]),
        mode=int(data["mode"]),
        mtime=float(data["mtime"]),
        target=received_opt_name(data.get("target")),
    )


def iter_files(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, recursive: bool = False
) -> Streamed[FileEntry]:
    """Every entry of `path` in tree order (just `path` when it is not a directory), as they arrive.

    Its `summary`: `path` (the directory listed, as the workspace names it) and `count`.

    Raises:
        InvalidArgument: a bad path, at once.
        RoostError: path_not_found, path_outside_workspace and the agent's other errors, when iterated.
    """
    args = {"path": arguments.guest_path(path), "recursive": bool(recursive)}
    return Streamed(engine, record, Op.FILE_LIST, args, _entry)


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
    args: dict[str, Any] = {"path": arguments.guest_path(path), "recursive": bool(recursive)}
    args["cursor"] = arguments.list_cursor(cursor)
    args["limit"] = arguments.optional_count(limit, "limit", MAX_FILE_OFFSET)
    with engine.records(record, Op.FILE_LIST, args) as stream:
        entries = tuple(_entry(item) for item in stream)
        result = stream.result
    next_cursor = result.get("next_cursor")
    return FileListing(
        received_name(result.get("path", args["path"])),
        entries,
        next_cursor is not None,
        str(next_cursor) if next_cursor else None,
    )


def stat_file(engine: Engine, record: WorkspaceRecord, path: str | bytes) -> FileEntry:
    return _entry(engine.call(record, Op.FILE_STAT, {"path": arguments.guest_path(path)}).result)


def read_file(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, offset: int = 0, max_bytes: int | None = None
) -> FileContent:
    """Raises: InvalidArgument: a bad path, offset or size (read_too_large above 8 MiB), before any call."""
    args: dict[str, Any] = {"path": arguments.guest_path(path), "offset": arguments.file_offset(offset)}
    if max_bytes is not None:
        args["max_bytes"] = arguments.read_size(max_bytes, "max_bytes", MAX_FILE_READ_BYTES)
    reply = engine.call(record, Op.FILE_READ, args)
    result = reply.result
    return FileContent(
        path=received_name(result["path"]),
        size=int(result["size"]),
        offset=int(result["offset"]),
        data=reply.body,
        eof=bool(result["eof"]),
    )


def write_file(
    engine: Engine, record: WorkspaceRecord, path: str | bytes, data: bytes, mode: int | None = None
) -> WriteResult:
    args: dict[str, Any] = {"path": arguments.guest_path(path)}
    if mode is not None:
        args["mode"] = arguments.whole_number(mode, "mode", 0, 0o7777, example=0o644)
    if not isinstance(data, bytes | bytearray):
        raise InvalidArgument(f"file content must be text or bytes, not {type(data).__name__}", hint="e.g. 'hello\\n'")
    result = engine.call(record, Op.FILE_WRITE, args, upload=[data]).result
    return WriteResult(received_name(result["path"]), int(result["size"]), int(result["mode"]))


def delete_file(engine: Engine, record: WorkspaceRecord, path: str | bytes, recursive: bool = False) -> DeleteResult:
    args = {"path": arguments.guest_path(path), "recursive": bool(recursive)}
    result = engine.call(record, Op.FILE_DELETE, args).result
    return DeleteResult(received_name(result["path"]), str(result["type"]))


def sync_push(
    engine: Engine, record: WorkspaceRecord, source: HostArg, dest: str | bytes = "/workspace", delete: bool = False
) -> SyncResult:
    """Copy a host directory or tar into the workspace (validated, then applied).

    Raises:
        NotFound: seed_not_found for a missing source.
        RoostError: archive_rejected for unsafe members (nothing is changed).
    """
    args = {"dest": arguments.guest_path(dest, "dest"), "delete": bool(delete)}
    stream = tar_stream(source, home=engine.home)
    result = engine.call(record, Op.ARCHIVE_IMPORT, args, upload=stream).result
    return SyncResult(
        dest=received_name(result.get("dest", args["dest"])),
        files=int(result.get("files", 0)),
        dirs=int(result.get("dirs", 0)),
        symlinks=int(result.get("symlinks", 0)),
        bytes=int(result.get("bytes", 0)),
        deleted=int(result.get("deleted", 0)),
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
    with engine.records(record, Op.PATCH_APPLY, {"dry_run": dry_run}, upload=[data]) as stream:
        files = tuple(PatchedFile(received_name(f["path"]), str(f["action"]), int(f["hunks"])) for f in stream)
        result = stream.result
    return PatchResult(files, bool(result.get("dry_run", dry_run)))
