"""A log file that never outgrows its limit, fed through a pipe.

A microVM's VMM writes its own log and the guest's serial console to its
stdout, and root in the guest can write to that console without end; the
file on the host must not grow with it. The VMM's stdout is a pipe instead,
and this small process (`python -I -m roost.backends.bounded_log PATH LIMIT`)
copies it into PATH. Once PATH passes LIMIT bytes, it is replaced (by rename:
a reader sees the old file or the new one) by its last LIMIT/2 bytes, so the
newest output is always kept. It ends when the pipe's last writer has gone.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import sys

CHUNK = 64 * 1024
MINIMUM_LIMIT = 2 * CHUNK


def _open_for_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def _trimmed(path: str, keep: int) -> int:
    """Replace `path` by its last `keep` bytes (starting at a line where one begins); the new size."""
    with open(path, "rb") as source:
        source.seek(max(0, os.fstat(source.fileno()).st_size - keep))
        tail = source.read()
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) - 1:
        tail = tail[newline + 1 :]
    partial = f"{path}.trim"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, b"--- roost: earlier output trimmed ---\n" + tail)
    finally:
        os.close(fd)
    os.replace(partial, path)
    return len(tail)


def keep(source: int, path: str, limit: int) -> None:
    """Copy `source` (a descriptor) into `path` until end of file, holding `path` under `limit` bytes."""
    limit = max(limit, MINIMUM_LIMIT)
    out = _open_for_append(path)
    size = os.fstat(out).st_size
    try:
        while chunk := os.read(source, CHUNK):
            if size + len(chunk) > limit:
                os.close(out)
                size = _trimmed(path, limit // 2)
                out = _open_for_append(path)
            os.write(out, chunk)
            size += len(chunk)
    finally:
        os.close(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m roost.backends.bounded_log PATH LIMIT_BYTES", file=sys.stderr)
        return 2
    keep(sys.stdin.fileno(), argv[0], int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
