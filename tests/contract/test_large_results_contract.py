"""Results of any size and file names as bytes, through the SDK, on every backend.

Sizes the suite can afford stand in for real trees: a 3,000-entry
directory, a 3,000-change diff, one name that is not UTF-8 (and holds a
control character) taken through every operation that names files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from roost import Roost, Workspace

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(shutil.which("git") is None, reason="patches are checked with git apply"),
]

TOOL_TIMEOUT = 60.0
MANY = 3000
# Not UTF-8 (\xff, \xe9) and a control character (\x01): no text holds it as it is.
ODD_DIR = b"d\xff"
ODD_FILE = b"caf\xe9\x01.txt"
ODD = ODD_DIR + b"/" + ODD_FILE


def bash_bytes(raw: bytes) -> str:
    """`raw` as a bash word that stands for exactly those bytes."""
    return "$'" + "".join(f"\\x{byte:02x}" for byte in raw) + "'"


def run(workspace: Workspace, script: str) -> None:
    done = workspace.exec(script, timeout=TOOL_TIMEOUT)
    assert done.exit_code == 0, done.stderr


def strict_json(value: object) -> str:
    """JSON any parser takes: UTF-8 with no lone surrogates (encoding fails on one)."""
    text = json.dumps(value, ensure_ascii=False)
    text.encode("utf-8")
    return text


def test_a_3000_entry_directory_lists_whole_streamed_and_paged(workspace: Workspace) -> None:
    run(workspace, f"mkdir many && cd many && for i in $(seq -w 1 {MANY}); do echo $i > f$i; done")
    names = [f"f{i:04d}" for i in range(1, MANY + 1)]

    listing = workspace.files.list("many")
    assert [e.name for e in listing.entries] == names
    assert (listing.path, listing.truncated, listing.next_cursor) == ("/workspace/many", False, None)

    with workspace.files.iter("/workspace", recursive=True) as entries:
        walked = [e.path for e in entries]
        assert entries.summary["count"] == MANY + 1
    assert walked == ["/workspace/many", *(f"/workspace/many/{n}" for n in names)]

    paged: list[str] = []
    cursor = None
    for _ in range(10):
        page = workspace.files.list("/workspace/many", cursor=cursor, limit=1000)
        paged += [e.name for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert page.truncated and len(page.entries) == 1000
    assert paged == names, "every entry exactly once, in order"


def test_a_3000_change_diff_lists_every_change_and_its_patch_applies_to_a_copy_of_the_seed(
    roost: Roost, tmp_path: Path
) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    for i in range(2000):
        (seed / f"s{i:04d}.txt").write_text(f"seed {i}\nsecond line\n")
    ws = roost.create_workspace("debian:12", seed_path=seed)
    run(
        ws,
        "for i in $(seq -w 0 999); do echo changed >> s0$i.txt; echo new $i > n$i.txt; done && rm s1???.txt && "
        f"mkdir {bash_bytes(ODD_DIR)} && printf 'odd\\n' > {bash_bytes(ODD)}",
    )

    with ws.diff_entries() as changes:
        kinds = {os.fsencode(c.path): c.change for c in changes}
        counts = changes.summary["counts"]
    assert counts == {"added": 1002, "deleted": 1000, "modified": 1000}
    assert len(kinds) == MANY + 2 and kinds[ODD] == "added" and kinds[b"s0999.txt"] == "modified"
    stat = ws.diff(stat=True)
    assert len(stat.changes) == MANY + 2 and stat.patch == "" and not stat.truncated

    exported = ws.export("/workspace", tmp_path / "changes.patch", format="patch")
    assert exported.files == MANY + 2 and exported.skipped == ()
    copy = tmp_path / "copy"
    shutil.copytree(seed, copy)
    for args in (["--check"], []):
        subprocess.run(
            ["git", "apply", *args, str(tmp_path / "changes.patch")],
            cwd=copy,
            check=True,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
        )
    now = {os.path.basename(e.path_bytes) for e in ws.files.list("/workspace").entries}
    assert set(os.listdir(os.fsencode(copy))) == now
    assert (copy / os.fsdecode(ODD)).read_bytes() == b"odd\n"
    assert (copy / "s0500.txt").read_text() == "seed 500\nsecond line\nchanged\n"


def test_a_name_that_is_not_utf8_works_in_every_operation_that_names_files(
    workspace: Workspace, tmp_path: Path
) -> None:
    full = b"/workspace/" + ODD
    # write and read: bytes or the str os.fsdecode makes of them, the same file either way.
    assert workspace.files.write(full, b"first\n").path == os.fsdecode(full)
    assert workspace.files.read(os.fsdecode(full)).data == b"first\n"
    entry = workspace.files.stat(full)
    assert (entry.path_bytes, entry.name, entry.type) == (full, os.fsdecode(ODD_FILE), "file")
    assert entry.to_dict()["path"] == '"/workspace/d\\377/caf\\351\\001.txt"'
    strict_json(entry.to_dict())

    (listed,) = workspace.files.list(b"/workspace/" + ODD_DIR).entries
    assert listed.path_bytes == full
    assert b"/workspace/" + ODD_DIR in {e.path_bytes for e in workspace.files.list("/workspace").entries}

    result = workspace.diff()
    assert {c.path_bytes for c in result.changes} == {ODD_DIR, ODD}
    assert 'diff --git "a/d\\377/caf\\351\\001.txt" "b/d\\377/caf\\351\\001.txt"' in result.patch
    strict_json(result.to_dict())
    assert [c.path_bytes for c in workspace.diff(paths=[b"/workspace/" + ODD_DIR]).changes] == [ODD_DIR, ODD]

    # export: as files, as a tar, as a patch that git applies to the right bytes.
    workspace.export(b"/workspace/" + ODD_DIR, tmp_path / "dir")
    assert (tmp_path / "dir" / os.fsdecode(ODD_FILE)).read_bytes() == b"first\n"
    workspace.export("/workspace", tmp_path / "all.tar", format="tar")
    with tarfile.open(tmp_path / "all.tar") as tar:
        assert ODD in {os.fsencode(m.name) for m in tar.getmembers()}
    workspace.export("/workspace", tmp_path / "odd.patch", format="patch")
    applied = tmp_path / "applied"
    applied.mkdir()
    subprocess.run(["git", "apply", str(tmp_path / "odd.patch")], cwd=applied, check=True, timeout=TOOL_TIMEOUT)
    assert (applied / os.fsdecode(ODD)).read_bytes() == b"first\n"

    # A working directory is a name too: exec runs in it, and the history keeps it.
    ran = workspace.exec(["cat", os.fsdecode(ODD_FILE)], cwd=b"/workspace/" + ODD_DIR)
    assert (ran.exit_code, ran.stdout) == (0, "first\n")
    last = workspace.logs(1)[0]
    assert os.fsencode(last.cwd) == b"/workspace/" + ODD_DIR and last.to_dict()["cwd"] == '"/workspace/d\\377"'

    # snapshots: a reset brings the name back with its content.
    workspace.snapshots.create("odd")
    workspace.files.write(full, b"second\n")
    workspace.files.delete(b"/workspace/" + ODD_DIR, recursive=True)
    workspace.reset(snapshot="odd")
    assert workspace.files.read(full).data == b"first\n"
    workspace.reset()
    assert workspace.diff(stat=True).changes == ()

    # Patches name it too: applying the exported one brings it back.
    applied_patch = workspace.apply_patch((tmp_path / "odd.patch").read_bytes())
    assert [f.path for f in applied_patch.files] == [os.fsdecode(full)]
    assert workspace.files.read(full).data == b"first\n"
