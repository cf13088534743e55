"""Bounded exec history of a workspace, with the captured output of each exec.

``workspaces/<id>/history.jsonl`` holds one JSON line per exec; the output
of exec N lives in ``outputs/N.stdout`` and ``outputs/N.stderr`` (no file for
an empty stream), all readable by their owner only (0600, in a 0700
directory). The history is also the exec counter: the next exec's id is one
more than the last line's, so an exec costs one durable append (synced
before it returns) and never a rewrite of the workspace record. Only the
newest `MAX_ENTRIES` are listed and readable; older lines and their outputs
are dropped when the file is compacted, every `COMPACT_EVERY` execs. All
writes happen under the workspace lock.

Imports: models, errors, store siblings and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from roost import arguments
from roost.errors import InvalidArgument, NotFound, Remedy
from roost.models import ExecRecord, OutputSlice
from roost.protocol.limits import MAX_FILE_OFFSET
from roost.store.atomic import fsync_dir, write_atomic
from roost.store.full_disk import state_write

MAX_ENTRIES = 100
# Compaction rewrites the file: once per this many execs, so the file holds at most MAX_ENTRIES + COMPACT_EVERY lines.
COMPACT_EVERY = 50
# The tail read to find the last exec id: several lines, whatever their commands.
TAIL_BYTES = 64 * 1024
SHORT_TAIL_BYTES = 4 * 1024
HISTORY_FILE = "history.jsonl"
OUTPUT_DIR = "outputs"
STREAMS = ("stdout", "stderr")
MAX_SLICE = 8 * 1024 * 1024
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(ExecRecord))


class ExecHistory:
    """The exec log of one workspace directory."""

    def __init__(self, ws_dir: Path) -> None:
        self._dir = ws_dir
        self._file = ws_dir / HISTORY_FILE
        self._outputs = ws_dir / OUTPUT_DIR

    def last_id(self) -> int:
        """The id of the newest exec recorded (0 for none): the counter the next exec continues."""
        try:
            fd = os.open(self._file, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            end = os.fstat(fd).st_size
            for size in (SHORT_TAIL_BYTES, TAIL_BYTES):  # the last line nearly always fits the short one
                tail = os.pread(fd, min(size, end), max(0, end - size))
                for line in reversed(tail.splitlines()):
                    exec_id = _exec_id(line)
                    if exec_id is not None:
                        return exec_id
                if len(tail) == end:
                    return 0
        finally:
            os.close(fd)
        return self._last_id_slowly()

    def _last_id_slowly(self) -> int:
        ids = [i for i in map(_exec_id, self._lines()) if i is not None]
        return ids[-1] if ids else 0

    def append(self, record: ExecRecord, stdout: bytes, stderr: bytes) -> None:
        """Add one exec (its id one more than `last_id`); durable when this returns. The caller holds the lock.

        Raises:
            StorageError: disk_full.
        """
        with state_write("the exec history"):
            try:
                for stream, data in (("stdout", stdout), ("stderr", stderr)):
                    if data:  # an empty stream has no file: the line says it had 0 bytes
                        self._outputs.mkdir(mode=0o700, exist_ok=True)
                        write_atomic(self._outputs / f"{record.exec_id}.{stream}", data, durable=False)
                # A record's fields are plain values: read them directly (`asdict` deep-copies each one).
                fields = {name: getattr(record, name) for name in _RECORD_FIELDS}
                line = json.dumps(fields, sort_keys=True).encode() + b"\n"
                fd = os.open(self._file, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    st = os.fstat(fd)
                    if st.st_mode & 0o077:
                        os.fchmod(fd, 0o600)  # written 0644 by older roosts: it holds full command lines
                    if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                        line = b"\n" + line  # a torn last line (a crash mid-append) stays apart from this one
                    os.write(fd, line)
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
                if not st.st_size:
                    fsync_dir(self._dir)  # a new file: its name must last as long as its first line
            except BaseException:
                # No line names these outputs, so compaction would never remove them.
                for stream in STREAMS:
                    (self._outputs / f"{record.exec_id}.{stream}").unlink(missing_ok=True)
                raise
            if record.exec_id % COMPACT_EVERY == 0:
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
        write_atomic(self._file, ("\n".join(kept) + "\n").encode())
        for line in dropped:
            exec_id = _exec_id(line.encode())
            if exec_id is None:
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
        known = set(_RECORD_FIELDS)
        records: list[ExecRecord] = []
        for line in self._lines():
            try:
                data = json.loads(line)
                records.append(ExecRecord(**{k: v for k, v in data.items() if k in known}))
            except (ValueError, TypeError):
                continue
        records = records[-MAX_ENTRIES:]
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
        last = self.last_id()
        if not last - MAX_ENTRIES < exec_id <= last:
            raise self._not_found(exec_id)
        path = self._outputs / f"{exec_id}.{stream}"
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(offset)
                data = fh.read(max_bytes)
        except FileNotFoundError:
            if not any(e.exec_id == exec_id for e in self.entries()):
                raise self._not_found(exec_id) from None
            size, data = 0, b""  # it printed nothing on this stream
        return OutputSlice(
            exec_id=exec_id,
            stream=stream,
            offset=offset,
            length=len(data),
            size=size,
            eof=offset + len(data) >= size,
            data=data.decode("utf-8", errors="replace"),
        )

    def _not_found(self, exec_id: int) -> NotFound:
        return NotFound(
            f"no saved output for exec {exec_id}",
            code="exec_not_found",
            remedy=Remedy(f"only the newest {MAX_ENTRIES} execs are kept; list them", "workspace_logs", self._dir.name),
        )


def _exec_id(line: bytes | str) -> int | None:
    """The exec id of one history line; None for a line that does not parse (a torn append)."""
    try:
        value = json.loads(line)["exec_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
