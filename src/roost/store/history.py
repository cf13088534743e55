"""Bounded exec history of a workspace, with the captured output of each exec.

``workspaces/<id>/history.jsonl`` holds one JSON line per exec; the output
of exec N lives in ``outputs/N.stdout`` and ``outputs/N.stderr``, all readable
by their owner only (0600, in a 0700 directory). Only the
newest `MAX_ENTRIES` are kept: older lines and their outputs are dropped
when the file is compacted. All writes happen under the workspace lock.

Imports: models, errors, store siblings and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from roost import arguments
from roost.errors import InvalidArgument, NotFound
from roost.models import ExecRecord, OutputSlice
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.store.atomic import write_atomic
from roost.store.full_disk import state_write

MAX_ENTRIES = 100
HISTORY_FILE = "history.jsonl"
OUTPUT_DIR = "outputs"
STREAMS = ("stdout", "stderr")
MAX_SLICE = 8 * 1024 * 1024


class ExecHistory:
    """The exec log of one workspace directory."""

    def __init__(self, ws_dir: Path) -> None:
        self._dir = ws_dir
        self._file = ws_dir / HISTORY_FILE
        self._outputs = ws_dir / OUTPUT_DIR

    def append(self, record: ExecRecord, stdout: bytes, stderr: bytes) -> None:
        """Add one exec; the caller holds the workspace lock.

        Raises:
            StorageError: disk_full.
        """
        with state_write("the exec history"):
            self._outputs.mkdir(mode=0o700, exist_ok=True)
            try:
                for stream, data in (("stdout", stdout), ("stderr", stderr)):
                    write_atomic(self._outputs / f"{record.exec_id}.{stream}", data, durable=False)
                fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as fh:
                    if os.fstat(fd).st_mode & 0o077:
                        os.fchmod(fd, 0o600)  # written 0644 by older roosts: it holds full command lines
                    fh.write(json.dumps(dataclasses.asdict(record), sort_keys=True) + "\n")
            except BaseException:
                # No line names these outputs, so compaction would never remove them.
                for stream in STREAMS:
                    (self._outputs / f"{record.exec_id}.{stream}").unlink(missing_ok=True)
                raise
            self._compact()

    def _lines(self) -> list[str]:
        try:
            return [line for line in self._file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def _compact(self) -> None:
        lines = self._lines()
        if len(lines) <= MAX_ENTRIES:
            return
        dropped, kept = lines[:-MAX_ENTRIES], lines[-MAX_ENTRIES:]
        write_atomic(self._file, ("\n".join(kept) + "\n").encode(), durable=False)
        for line in dropped:
            try:
                exec_id = int(json.loads(line)["exec_id"])
            except (ValueError, KeyError, TypeError):
                continue
            for stream in STREAMS:
                (self._outputs / f"{exec_id}.{stream}").unlink(missing_ok=True)

    def entries(self, limit: int | None = None) -> list[ExecRecord]:
        """The newest `limit` (1 or more; all when None), newest last; lines that do not parse
        (a torn append) are skipped.

        Raises:
            InvalidArgument: a limit that is not a whole number from 1.
        """
        limit = arguments.optional_count(limit, "limit", MAX_FILE_OFFSET)
        known = {f.name for f in dataclasses.fields(ExecRecord)}
        records: list[ExecRecord] = []
        for line in self._lines():
            try:
                data = json.loads(line)
                records.append(ExecRecord(**{k: v for k, v in data.items() if k in known}))
            except (ValueError, TypeError):
                continue
        return records[-limit:] if limit else records

    def read_output(self, exec_id: int, stream: str, offset: int = 0, max_bytes: int = 65536) -> OutputSlice:
        """A window of a saved output stream.

        Raises:
            InvalidArgument: unknown stream name or a window above the limit.
            NotFound: exec_not_found when the exec is unknown or was dropped.
        """
        if stream not in STREAMS:
            raise InvalidArgument(f"unknown output stream {stream!r}", hint=f"use one of {', '.join(STREAMS)}")
        arguments.whole_number(exec_id, "exec id", 1, MAX_FILE_OFFSET, example=1)
        arguments.file_offset(offset)
        arguments.read_size(max_bytes, "max_bytes", MAX_SLICE)
        path = self._outputs / f"{exec_id}.{stream}"
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(offset)
                data = fh.read(max_bytes)
        except FileNotFoundError:
            raise NotFound(
                f"no saved output for exec {exec_id}",
                code="exec_not_found",
                hint=f"only the newest {MAX_ENTRIES} execs are kept; see `roost workspace logs`",
            ) from None
        return OutputSlice(
            exec_id=exec_id,
            stream=stream,
            offset=offset,
            length=len(data),
            size=size,
            eof=offset + len(data) >= size,
            data=data.decode("utf-8", errors="replace"),
        )
