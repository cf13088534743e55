"""`roost workspace cp` both ways, `docker cp` style, with the export/sync safety rules, each call a process."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("beta\n")
    return root


def cat(roost: RoostCli, ws: str, path: str) -> str:
    return roost("workspace", "exec", ws, "cat", path, check_rc=0).stdout


def test_a_host_file_goes_to_a_new_name_or_into_an_existing_directory(roost: RoostCli, tree: Path) -> None:
    ws = roost.create()
    named = roost.json("workspace", "cp", str(tree / "a.txt"), f"{ws}:notes/first.txt")
    assert (named["direction"], named["dest"], named["files"], named["bytes"]) == (
        "in",
        "/workspace/notes/first.txt",
        1,
        6,
    )
    roost("workspace", "cp", str(tree / "a.txt"), f"{ws}:notes", check_rc=0)
    assert cat(roost, ws, "notes/first.txt") == cat(roost, ws, "notes/a.txt") == "alpha\n"


def test_a_host_directory_is_copied_whole(roost: RoostCli, tree: Path) -> None:
    ws = roost.create()
    result = roost.json("workspace", "cp", str(tree), f"{ws}:/workspace")  # an existing dir: into it
    assert (result["dest"], result["files"], result["dirs"]) == ("/workspace/proj", 2, 1)
    assert cat(roost, ws, "proj/sub/b.txt") == "beta\n"


def test_a_tar_file_is_copied_not_unpacked(roost: RoostCli, tmp_path: Path) -> None:
    import tarfile

    archive = tmp_path / "x.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(__file__, arcname="inside.py")
    ws = roost.create()
    roost("workspace", "cp", str(archive), f"{ws}:x.tar", check_rc=0)
    listing = roost("workspace", "exec", ws, "ls", check_rc=0).stdout.split()
    assert "x.tar" in listing and "inside.py" not in listing


def test_a_workspace_tree_comes_out_without_setuid_bits_or_links_leading_out(roost: RoostCli, tmp_path: Path) -> None:
    ws = roost.create()
    setup = (
        "mkdir -p out/in && echo s > out/tool && chmod 4777 out/tool && ln -s /etc/passwd out/pw && ln -s tool out/ok"
    )
    roost("workspace", "exec", ws, "sh", "-c", setup, check_rc=0)
    result = roost.json("workspace", "cp", f"{ws}:out", str(tmp_path))  # an existing dir: into it
    copied = tmp_path / "out"
    assert (result["direction"], result["path"], result["skipped_count"]) == ("out", str(copied), 1)
    assert [s["path"] for s in result["skipped"]] == ["pw"]
    mode = stat.S_IMODE((copied / "tool").stat().st_mode)
    assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWGRP | stat.S_IWOTH)
    assert not (copied / "pw").exists() and not (copied / "pw").is_symlink()
    assert os.readlink(copied / "ok") == "tool"  # a link inside the copy stays
    assert (copied / "in").is_dir()


def test_a_workspace_file_comes_out_to_a_new_host_name_and_never_over_one(roost: RoostCli, tmp_path: Path) -> None:
    ws = roost.create()
    roost("workspace", "exec", ws, "sh", "-c", "echo data > f.txt", check_rc=0)
    roost("workspace", "cp", f"{ws}:f.txt", str(tmp_path / "g.txt"), check_rc=0)
    assert (tmp_path / "g.txt").read_text() == "data\n"
    roost.error(roost("workspace", "cp", "--json", f"{ws}:f.txt", str(tmp_path / "g.txt")), 4, "output_exists")


def test_a_link_leading_out_of_a_host_tree_is_refused(roost: RoostCli, tree: Path) -> None:
    (tree / "pw").symlink_to("/etc/passwd")
    ws = roost.create()
    proc = roost("workspace", "cp", "--json", str(tree), f"{ws}:proj")
    assert proc.returncode != 0
    assert "archive_rejected" in proc.stderr
    assert "proj" not in roost("workspace", "exec", ws, "ls", check_rc=0).stdout.split()


@pytest.mark.parametrize(("source", "dest"), [("a:/x", "b:/y"), ("./a", "/tmp/b")])
def test_exactly_one_side_names_a_workspace(roost: RoostCli, source: str, dest: str) -> None:
    error = roost.error(roost("workspace", "cp", "--json", source, dest), 2, "invalid_argument")
    assert "WS:PATH" in error["hint"]


def test_a_missing_workspace_path_is_path_not_found(roost: RoostCli, tmp_path: Path) -> None:
    ws = roost.create()
    roost.error(roost("workspace", "cp", "--json", f"{ws}:nope", str(tmp_path / "n")), 3, "path_not_found")
