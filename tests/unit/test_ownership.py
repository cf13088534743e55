"""Shifting a tree's owners into a namespace's range: every entry once, modes kept, and never
anything a link points at."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from roost.ownership import OwnerOutOfRange, shift_tree

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
OFFSET = 200_000


def test_owners_shift_once_modes_stay_and_links_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    tool = tree / "sub" / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chown(tool, 0, 42)
    tool.chmod(0o4755)
    os.link(tool, tree / "tool-again")
    (tree / "out").symlink_to(outside)
    (tree / "dir-out").symlink_to(tmp_path)

    shift_tree(tree, OFFSET, OFFSET)

    assert (tool.stat().st_uid, tool.stat().st_gid) == (OFFSET, OFFSET + 42)  # the hard link: shifted once
    assert stat.S_IMODE(tool.stat().st_mode) == 0o4755
    assert os.lstat(tree / "out").st_uid == OFFSET
    assert (outside.stat().st_uid, tmp_path.stat().st_uid) == (0, 0)
    assert tree.stat().st_uid == OFFSET and (tree / "sub").stat().st_uid == OFFSET


def test_an_owner_beyond_the_mapped_range_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    odd = tree / "odd"
    odd.write_text("")
    os.chown(odd, 70_000, 0)
    with pytest.raises(OwnerOutOfRange):
        shift_tree(tree, OFFSET, OFFSET)
