"""A stopped workspace's disk, read without booting it, driven through the SDK.

    uv run python examples/disk.py

Makes a workspace that writes a build log, a symlink out of itself and a
large sparse file, stops it, and then, with the workspace down: lists its
disk (the link is listed with its target, never followed), reads the end of
the big file by offset, finds what fills the disk, and exports the logs to
the host (the link out is left behind and listed). On a firecracker
workspace the same calls read its ext4 image with e2fsprogs, and `check`
and `grow` work on the image; here (the mock backend, host processes, NOT
isolated, with a temporary ROOST_HOME) they say they do not apply.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from roost import Roost, RoostError


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="roost-disk-") as scratch,
        Roost(home=Path(scratch, "home"), backend="mock") as roost,
    ):
        ws = roost.create_workspace("debian:12", name="build")
        ws.exec(
            "mkdir -p out/logs && echo 'build ok' > out/logs/build.log && ln -s /etc/passwd out/logs/passwd"
            " && truncate -s 200M out/cache.bin && printf 'TAIL' >> out/cache.bin"
        )
        try:
            ws.disk.list()
        except RoostError as exc:
            print(f"while it runs: {exc.code}")
        ws.stop()

        for entry in ws.disk.list("out", recursive=True).entries:
            link = f" -> {entry.target}" if entry.target else ""
            print(f"{entry.type:8} {entry.size:>10} {entry.path}{link}")
        tail = ws.disk.read("out/cache.bin", offset=200 * 1024 * 1024, max_bytes=16)
        print(f"read at offset {tail.offset}: {tail.text!r} (eof={tail.eof})")
        usage = ws.disk.usage(top=2)
        print(f"usage: {usage.total_bytes // 1024} KiB in {usage.files} files; largest {usage.top[0].path}")
        exported = ws.disk.export("out/logs", Path(scratch, "logs"))
        print(f"exported {exported.files} file; skipped {[s.path for s in exported.skipped]}")
        print("log on the host:", Path(scratch, "logs", "build.log").read_text().strip())
        try:
            ws.disk.check()
        except RoostError as exc:
            print(f"check here: {exc.code}")
        ws.delete()
        print("workspaces left:", len(roost.list_workspaces()))
    print("disk example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
