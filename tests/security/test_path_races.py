"""A workspace that flips a directory for a symlink while the host works in it never gets an op out.

Inside the workspace a flipper swaps `/workspace/<unique>/d` between a real
directory and a symlink to an outside directory made for the test, as fast as
it can, while the host writes, reads, lists, deletes, pushes, diffs, exports
and runs commands with their cwd under `d` through the SDK. Whatever the
timing, nothing may land in, be read from or be deleted from the outside
directory. Errors are allowed (the path really is a symlink half the time);
escapes are not, and neither are internal errors.

Harmless when it fails: the outside directory is one this test made (a host
temp dir on mock, a dir under /tmp inside the sandbox), the flipper stops by
itself after a deadline or when told, and the workspace goes at teardown.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import pytest

from helpers import wait_until
from roost import RoostError, Workspace
from roost.workspace.services import Readiness

pytestmark = pytest.mark.contract
T = TypeVar("T")
P = ParamSpec("P")

ROUNDS = 60
FLIPPER_SECONDS = 120  # a bound for a run that is never told to stop; the test stops it in seconds
VICTIMS = ROUNDS
# Runs in /workspace/<unique>: fills `d` and the outside dir with the same names and
# different content, then swaps `d` and `alt` (a symlink to outside) until told to stop.
FLIPPER = r"""
import ctypes, os, sys, time
outside, marker, victims, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

def fill(base, tag, *extra):
    os.makedirs(os.path.join(base, "m"), exist_ok=True)
    for name in ["secret", "m/keep", *extra] + [f"v{i}" for i in range(victims)]:
        with open(os.path.join(base, name), "w") as fh:
            fh.write(tag)

fill(outside, marker, "only-outside")
fill("d", "inside")
os.symlink(outside, "alt")
libc = ctypes.CDLL(None, use_errno=True)

def exchange():
    if libc.renameat2(-100, b"d", -100, b"alt", 2) == 0:  # RENAME_EXCHANGE: d is always there
        return
    os.rename("d", "d.tmp"); os.rename("alt", "d"); os.rename("d", "alt"); os.rename("d.tmp", "d")

open("ready", "w").close()
deadline = time.monotonic() + seconds
flips = 0
while not os.path.exists("stop") and time.monotonic() < deadline:
    for _ in range(200):
        exchange()
        flips += 1
if os.path.islink("d"):
    exchange()
print("flips", flips)
"""
# Prints what the outside dir holds: {relative path: content}.
MANIFEST = r"""
import json, os, sys
found = {}
for top, dirs, files in os.walk(sys.argv[1]):
    for name in dirs + files:
        path = os.path.join(top, name)
        rel = os.path.relpath(path, sys.argv[1])
        if os.path.islink(path) or os.path.isdir(path):
            found[rel] = "<dir>" if os.path.isdir(path) and not os.path.islink(path) else "<link>"
        else:
            with open(path) as fh:
                found[rel] = fh.read()
print(json.dumps(found, sort_keys=True))
"""


def _outside_manifest(ws: Workspace, outside: str) -> dict[str, str]:
    done = ws.exec(["python3", "-c", MANIFEST, outside])
    assert done.exit_code == 0, done.stderr
    return dict(json.loads(done.stdout))


def _exported_files(out: Path) -> list[Path]:
    """The regular files an export wrote; links it wrote are not followed (that would read the outside ourselves)."""
    if out.is_dir() and not out.is_symlink():
        paths = [Path(top, name) for top, _, names in os.walk(out) for name in names]
    else:
        paths = [out]
    return [p for p in paths if p.is_file() and not p.is_symlink()]


class Attempts:
    """Runs ops that may fail (the path really is a link half the time) and counts the outcomes by code."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.internal: list[str] = []

    def __call__(self, what: str, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        try:
            result = call(*args, **kwargs)
        except RoostError as exc:
            self.outcomes[exc.code] += 1
            if exc.code == "internal":
                self.internal.append(f"{what}: {exc}")
            return None
        self.outcomes["ok"] += 1
        return result


def test_a_flipping_directory_never_lets_an_op_out_of_the_workspace(
    workspace: Workspace, backend: str, tmp_path: Path
) -> None:
    unique = f"race-{secrets.token_hex(4)}"
    base = f"/workspace/{unique}"
    marker = f"outside-{unique}"
    if backend == "mock":
        outside_dir = tmp_path / "outside"  # /workspace is a host directory here: so is the outside
        outside_dir.mkdir()
        outside = str(outside_dir)
    else:
        outside = f"/tmp/{unique}-outside"  # outside /workspace, inside the sandbox
    workspace.exec(["mkdir", "-p", f"{unique}/d"])  # relative: on mock, commands see host paths
    expected = {
        "m": "<dir>",
        "m/keep": marker,
        "secret": marker,
        "only-outside": marker,
        **{f"v{i}": marker for i in range(VICTIMS)},
    }
    source = tmp_path / "push"
    (source / "m").mkdir(parents=True)
    (source / "pushed.txt").write_text("pushed\n")
    (source / "m" / "mirrored.txt").write_text("mirrored\n")

    workspace.services.start(
        "flipper",
        ["python3", "-c", FLIPPER, outside, marker, str(VICTIMS), str(FLIPPER_SECONDS)],
        cwd=base,
        ready=Readiness(file=f"{base}/ready", timeout_s=30.0, interval_ms=10),
    )
    attempt = Attempts()
    escapes: list[str] = []
    d = f"{base}/d"
    try:
        for i in range(ROUNDS):
            attempt("write", workspace.files.write, f"{d}/w{i}", f"written {i}\n")
            read = attempt("read", workspace.files.read, f"{d}/secret")
            if read is not None and marker.encode() in read.data:
                escapes.append(f"read {i} returned the outside file")
            listing = attempt("list", workspace.files.list, d)
            if listing is not None and any(e.name == "only-outside" for e in listing.entries):
                escapes.append(f"list {i} showed the outside dir")
            attempt("delete", workspace.files.delete, f"{d}/v{i}")
            attempt("push", workspace.sync_push, source, dest=d)
            attempt("mirror", workspace.sync_push, source / "m", dest=f"{d}/m", delete=True)
            done = attempt("exec", workspace.exec, ["sh", "-c", f"pwd -P; touch ran-{i}"], cwd=d)
            if done is not None and outside in done.stdout:
                escapes.append(f"exec {i} ran in the outside dir")
            if i % 10 == 0:
                diff = attempt("diff", workspace.diff)
                if diff is not None and marker in diff.patch:
                    escapes.append(f"diff {i} shows outside content")
                exported = tmp_path / f"export-{i}"
                if attempt("export", workspace.export, d, exported) is not None:
                    leaked = [p for p in _exported_files(exported) if marker in p.read_text()]
                    if leaked:
                        escapes.append(f"export {i} copied outside files: {leaked}")
    finally:
        workspace.exec(["touch", f"{unique}/stop"])
        try:  # it notices within 200 flips and reports how many it made
            wait_until(
                lambda: workspace.services.status("flipper").state == "exited",
                timeout=30.0,
                interval=0.05,
                what="the flipper",
            )
        finally:
            workspace.services.stop("flipper", timeout=1.0)

    landed = _outside_manifest(workspace, outside)
    assert landed == expected, f"the outside dir changed: {sorted(set(landed) ^ set(expected))}"
    assert not escapes
    assert not attempt.internal
    # The race was really run: `d` flipped, and ops met it both as a directory and as a link.
    assert int(workspace.services.logs("flipper", stream="stdout").split()[-1]) > 1000
    assert attempt.outcomes["ok"] > 0 and attempt.outcomes["path_outside_workspace"] > 0, attempt.outcomes
