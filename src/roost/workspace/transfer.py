"""Host-side tar streams for seeding and `sync push`.

A host directory is packed into an uncompressed tar on the fly by a producer
thread into a bounded queue, so memory stays flat whatever the tree's size.
A tar file (any compression tarfile reads) is streamed as it is. The agent
validates every member; this side only refuses to pack what no workspace
should get (sockets, fifos, devices).

Imports: errors and the standard library only.
"""

from __future__ import annotations

import os
import queue
import stat
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

from roost.errors import InvalidArgument, NotFound

CHUNK = 1024 * 1024
_QUEUE_DEPTH = 8


class _QueueWriter:
    """A write-only file object feeding fixed-size chunks into a queue."""

    def __init__(self, out: queue.Queue[bytes | BaseException | None]) -> None:
        self._out = out
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= CHUNK:
            self._out.put(bytes(self._buf[:CHUNK]))
            del self._buf[:CHUNK]
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._out.put(bytes(self._buf))
            self._buf.clear()


def _packable(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)


def _pack(root: Path, out: queue.Queue[bytes | BaseException | None], stop: threading.Event) -> None:
    writer = _QueueWriter(out)
    try:
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in sorted(dirnames + filenames):
                    if stop.is_set():
                        return
                    full = os.path.join(dirpath, name)
                    st = os.lstat(full)
                    if _packable(st):
                        tar.add(full, arcname=os.path.relpath(full, root), recursive=False)
        writer.flush()
        out.put(None)
    except BaseException as exc:  # handed to the consumer, raised there
        out.put(exc)


def _directory_stream(root: Path) -> Iterator[bytes]:
    out: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
    stop = threading.Event()
    producer = threading.Thread(target=_pack, args=(root, out, stop), name="tar-pack", daemon=True)
    producer.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise InvalidArgument(f"cannot pack {root}: {item}", code="seed_unreadable") from None
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            try:
                out.get_nowait()
            except queue.Empty:
                producer.join(0.01)


def _file_stream(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def tar_stream(source: str | os.PathLike[str]) -> Iterator[bytes]:
    """An uncompressed (or the file's own) tar stream of a host directory or tar file.

    Raises:
        NotFound: seed_not_found when the source does not exist.
        InvalidArgument: seed_invalid when it is neither a directory nor a tar archive.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise NotFound(
            f"seed path {str(source)!r} does not exist",
            code="seed_not_found",
            hint="give an existing directory or tar file",
        )
    if path.is_dir():
        return _directory_stream(path)
    if path.is_file() and tarfile.is_tarfile(path):
        return _file_stream(path)
    raise InvalidArgument(
        f"seed path {str(source)!r} is neither a directory nor a tar archive",
        code="seed_invalid",
        hint="give a directory, or a .tar/.tar.gz file",
    )
