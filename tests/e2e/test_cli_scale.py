"""The CLI with results of any size and names that are bytes: listings and diffs stream, names survive.

Arguments reach the CLI as bytes (a name that is not UTF-8 is passed as
`os.fsdecode` gives it, which the child gets back as the same bytes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from roost.protocol.names import from_text

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e

MANY = 3000
ODD = b"/workspace/caf\xe9\x1b[2J.txt"  # not UTF-8, and an escape sequence that would clear a terminal
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def test_a_3000_entry_listing_and_diff_stream_through_the_cli_and_json(roost: RoostCli) -> None:
    ws = roost.create()
    roost(
        "workspace", "exec", ws, "-c", f"mkdir m && cd m && for i in $(seq -w 1 {MANY}); do : > f$i; done", check_rc=0
    )
    paths = [f"/workspace/m/f{i:04d}" for i in range(1, MANY + 1)]

    lines = roost("workspace", "file", "list", ws, "m", check_rc=0).stdout.splitlines()
    assert lines[0].split() == ["MODE", "SIZE", "PATH"]
    assert [line.split()[-1] for line in lines[1:]] == paths
    document = roost.json("workspace", "file", "list", ws, "m")
    assert [entry["path"] for entry in document["entries"]] == paths
    assert (document["path"], document["truncated"], document["next_cursor"]) == ("/workspace/m", False, None)

    table = roost("workspace", "diff", ws, "--stat", check_rc=0).stdout.splitlines()
    assert len(table) == 1 + MANY + 1 + 1 and table[-1] == f"{MANY + 1} added"
    stat = roost.json("workspace", "diff", ws, "--stat")
    assert len(stat["changes"]) == MANY + 1 and stat["counts"] == {"added": MANY + 1}
    full = roost.json("workspace", "diff", ws, "--max-bytes", str(64 * 1024 * 1024))
    assert full["patch"].count("diff --git ") == MANY and not full["truncated"]


@pytest.mark.skipif(shutil.which("git") is None, reason="the exported patch is checked with git apply")
def test_a_name_that_is_not_utf8_goes_through_every_cli_command_that_names_files(
    roost: RoostCli, tmp_path: Path
) -> None:
    ws = roost.create()
    odd = os.fsdecode(ODD)
    roost("workspace", "file", "write", ws, odd, "--content", "first\n", check_rc=0)
    assert roost("workspace", "file", "read", ws, odd, check_rc=0).stdout == "first\n"

    # Human output escapes it; --json carries it quoted, and the quoted form names the same bytes.
    shown = roost("workspace", "file", "list", ws, check_rc=0).stdout
    assert "/workspace/caf\\xe9\\x1b[2J.txt" in shown and not CONTROL.search(shown)
    (entry,) = roost.json("workspace", "file", "list", ws)["entries"]
    assert entry["path"] == '"/workspace/caf\\351\\033[2J.txt"'
    assert os.fsencode(from_text(entry["path"])) == ODD
    assert roost.json("workspace", "file", "stat", ws, odd)["name"] == '"caf\\351\\033[2J.txt"'

    stat = roost("workspace", "diff", ws, "--stat", check_rc=0).stdout
    assert "caf\\xe9\\x1b[2J.txt" in stat and not CONTROL.search(stat)
    assert 'diff --git "a/caf\\351\\033[2J.txt" "b/caf\\351\\033[2J.txt"' in roost("workspace", "diff", ws).stdout

    roost("workspace", "export", ws, odd, "-o", str(tmp_path / "one"), check_rc=0)
    assert (tmp_path / "one").read_bytes() == b"first\n"
    roost("workspace", "export", ws, "/workspace", "-o", str(tmp_path / "all.tar"), "--format", "tar", check_rc=0)
    roost("workspace", "export", ws, "/workspace", "-o", str(tmp_path / "p.patch"), "--format", "patch", check_rc=0)
    applied = tmp_path / "applied"
    applied.mkdir()
    subprocess.run(["git", "apply", str(tmp_path / "p.patch")], cwd=applied, check=True, timeout=30)
    assert (applied / os.fsdecode(ODD[len(b"/workspace/") :])).read_bytes() == b"first\n"

    roost("workspace", "snapshot", "create", ws, "odd", check_rc=0)
    roost("workspace", "file", "delete", ws, odd, check_rc=0)
    roost("workspace", "reset", ws, "--snapshot", "odd", check_rc=0)
    assert roost("workspace", "file", "read", ws, odd, check_rc=0).stdout == "first\n"
