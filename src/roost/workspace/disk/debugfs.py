"""e2fsprogs' `debugfs`, driven read-only over an ext4 image that is never mounted.

Every request names inodes (`<12>`), never paths: no name from the image or
the caller is ever written into a debugfs command, so none can inject one.
debugfs runs in catastrophic mode (`-c`: read only, bitmaps not read, so a
damaged image still reads), several commands per process (`-f -`), and its
output is parsed where nothing the workspace wrote can pass for structure:

- `ls -p` prints `/inode/mode/uid/gid/name/size/` per entry; a name holds no
  `/`, so entries are matched one after another from the start, and a name
  holding a newline (or text like debugfs's own echo) stays inside its entry;
- `inode_dump` prints the raw inode as an octal-addressed hex dump whose text
  column shows no control character, decoded here (`InodeInfo`);
- file contents come from `cat`, one process per file, streamed.

Imports: errors and the standard library.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from roost.errors import BackendError, operator_remedy

__all__ = ["ROOT_INODE", "Debugfs", "DirRecord", "InodeInfo"]

ROOT_INODE = 2
BATCH = 1000  # commands per debugfs process
CHUNK = 1024 * 1024
DEADLINE = 120.0
_RECORD = re.compile(rb"/(\d+)/([0-7]+)/(-?\d+)/(-?\d+)/([^/]*)/(\d*)/\n")
_DUMP_LINE = re.compile(rb"([0-7]{4,})  ((?:[0-9a-f]{4} ?){1,8})")
_EXTENTS_FL = 0x80000
_INLINE_DATA_FL = 0x10000000
_HUGE_FILE_FL = 0x40000
T = TypeVar("T")
TOOLS_HINT = "install e2fsprogs (debugfs, e2fsck, resize2fs) on the host"


@dataclass(frozen=True)
class DirRecord:
    """One entry of a directory as `ls -p` gives it; `name` is the raw bytes."""

    inode: int
    mode: int
    name: bytes
    size: int


@dataclass(frozen=True)
class InodeInfo:
    """What roost reads from a raw inode: mtime, allocated bytes, and a fast symlink's target."""

    mtime: int
    allocated: int
    fast_target: bytes | None


def tool(name: str) -> str:
    """Raises: BackendError: disk_tool_missing."""
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if Path(p).exists()), None)
    if found is None:
        raise BackendError(
            f"{name} (e2fsprogs) is not installed on this host",
            code="disk_tool_missing",
            remedy=operator_remedy(TOOLS_HINT, "doctor"),
        )
    return found


def unreadable(image: Path, detail: str) -> BackendError:
    return BackendError(
        f"the workspace's disk {image.name} cannot be read: {detail}",
        code="disk_corrupt",
        hint="check the disk's filesystem, and repair it if the check reports errors",
    )


def decode_inode(dump: bytes) -> InodeInfo:
    """The fields roost needs from the raw inode in `dump` (`inode_dump`'s output for one inode)."""
    raw = _undump(dump)
    if len(raw) < 128:
        raise ValueError("an inode dump shorter than 128 bytes")
    mode, size_lo, mtime, blocks_lo, flags = (
        struct.unpack_from("<H", raw, 0)[0],
        struct.unpack_from("<I", raw, 4)[0],
        struct.unpack_from("<I", raw, 16)[0],
        struct.unpack_from("<I", raw, 28)[0],
        struct.unpack_from("<I", raw, 32)[0],
    )
    blocks = blocks_lo | struct.unpack_from("<H", raw, 116)[0] << 32
    allocated = blocks * 512 if not flags & _HUGE_FILE_FL else 0  # huge-file blocks are in fs blocks: unknown here
    target = None
    if mode & 0o170000 == 0o120000 and size_lo < 60 and not flags & (_EXTENTS_FL | _INLINE_DATA_FL):
        target = raw[40 : 40 + size_lo]
    return InodeInfo(mtime, allocated, target)


def _undump(dump: bytes) -> bytes:
    """The bytes of a hex dump: `OOOO  hhhh hhhh ...  text` lines (octal offsets), `*` repeating the line before."""
    out = bytearray()
    last = b""
    repeat = False
    for line in dump.split(b"\n"):
        if line.strip() == b"*":
            repeat = True
            continue
        found = _DUMP_LINE.match(line)
        if found is None:
            continue
        offset = int(found.group(1), 8)
        while repeat and len(out) < offset:
            out += last
        repeat = False
        last = bytes.fromhex(found.group(2).decode().replace(" ", ""))
        out[offset:] = last
    if repeat:  # a run to the end: the dump stops at the inode's size, 256 bytes or more
        while len(out) < 256:
            out += last
    return bytes(out)


class Debugfs:
    """Read-only requests on one ext4 image."""

    def __init__(self, image: Path) -> None:
        self.image = image
        self.binary = tool("debugfs")

    def _run(self, commands: Sequence[str]) -> bytes:
        try:
            done = subprocess.run(
                [self.binary, "-c", "-f", "-", str(self.image)],
                input="".join(f"{command}\n" for command in commands).encode(),
                capture_output=True,
                timeout=DEADLINE,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise unreadable(self.image, str(exc)) from None
        if b"while trying to open" in done.stderr or b"Filesystem not open" in done.stderr:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            raise unreadable(self.image, detail[1] if len(detail) > 1 else "debugfs cannot open it")
        return done.stdout

    def _parsed(self, commands: Sequence[str], parse: Callable[[bytes, int], tuple[T, int]]) -> list[T | None]:
        """Each command's output parsed by `parse(output, start) -> (value, end)` (None: no output), in batches.

        Echoes (`debugfs: CMD`) are looked for in order, each after where the section before it
        ended as its own parser saw it, so nothing an entry's name holds is ever taken for one.
        """
        found: list[T | None] = []
        for start in range(0, len(commands), BATCH):
            batch = commands[start : start + BATCH]
            out = self._run(batch)
            pos = 0
            for command in batch:
                echo = f"debugfs: {command}\n".encode()
                at = out.find(echo, pos)
                if at < 0:
                    found.append(None)
                    continue
                value, pos = parse(out, at + len(echo))
                found.append(value)
        return found

    def list_dirs(self, inodes: Sequence[int]) -> dict[int, list[DirRecord]]:
        """The entries (`.` and `..` left out) of each directory inode; a non-directory has none."""
        listed = self._parsed([f"ls -p <{inode}>" for inode in inodes], _records)
        return {inode: records or [] for inode, records in zip(inodes, listed, strict=True)}

    def inodes(self, inodes: Sequence[int]) -> dict[int, InodeInfo]:
        """Raises: BackendError: disk_corrupt when an inode cannot be read."""
        dumps = self._parsed([f"inode_dump <{inode}>" for inode in inodes], _dump)
        found = {}
        for inode, dump in zip(inodes, dumps, strict=True):
            try:
                found[inode] = decode_inode(dump or b"")
            except ValueError as exc:
                raise unreadable(self.image, f"inode {inode}: {exc}") from None
        return found

    def cat(self, inode: int, offset: int = 0) -> Iterator[bytes]:
        """The contents of the file `inode` from `offset`, streamed (debugfs stops when the reader does)."""
        with subprocess.Popen(
            [self.binary, "-c", "-R", f"cat <{inode}>", str(self.image)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as process:
            assert process.stdout is not None
            try:
                skip = offset
                while chunk := process.stdout.read(CHUNK):
                    if skip >= len(chunk):
                        skip -= len(chunk)
                        continue
                    yield chunk[skip:]
                    skip = 0
            finally:
                process.kill()


def _records(out: bytes, pos: int) -> tuple[list[DirRecord], int]:
    records = []
    while (match := _RECORD.match(out, pos)) is not None:
        pos = match.end()
        name, inode = match.group(5), int(match.group(1))
        if inode and name not in (b".", b".."):  # inode 0: an unused slot (lost+found keeps empty ones)
            records.append(DirRecord(inode, int(match.group(2), 8), name, int(match.group(6) or 0)))
    return records, pos


def _dump(out: bytes, pos: int) -> tuple[bytes, int]:
    """A hex dump's lines start with their offset and show no control character: the next echo ends it."""
    end = out.find(b"\ndebugfs: ", pos)
    end = len(out) if end < 0 else end
    return out[pos:end], end
