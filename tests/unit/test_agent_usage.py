"""The agent's view of what a workspace uses: its process tree, the whole system (a VM's view), and the
bytes under a directory, each file once and no link followed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from roost.agent.system.usage import disk_used, system_usage, tree_usage

MIB = 1024 * 1024


def test_a_process_tree_counts_its_children_and_keeps_no_peak() -> None:
    alone = tree_usage(os.getpid())
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            with_child = tree_usage(os.getpid())
        finally:
            child.kill()

    assert with_child.pids == alone.pids + 1
    assert with_child.memory_bytes > alone.memory_bytes
    assert with_child.memory_peak_bytes is None
    assert alone.cpu_seconds > 0


def test_the_system_view_counts_the_whole_machine() -> None:
    found = system_usage()

    assert found.cpu_seconds > 0 and found.memory_bytes > 0 and found.pids >= 1


def test_disk_use_counts_each_file_once_and_follows_no_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(os.urandom(4 * MIB))
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "one").write_bytes(os.urandom(MIB))
    os.link(tree / "sub" / "one", tree / "again")
    (tree / "out").symlink_to(outside, target_is_directory=True)
    fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    try:
        used = disk_used(fd)
    finally:
        os.close(fd)

    assert MIB <= used < 2 * MIB
