"""What `roost workspace cp` and `exec -t` stand on (`copy_in`/`copy_out`, a shell running one command), on every backend."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from roost import RoostError, Workspace


def test_a_tree_goes_in_and_comes_back_the_same(workspace: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "proj"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 64)
    sent = workspace.copy_in(source, "/workspace")
    assert (sent.dest, sent.files, sent.dirs) == ("/workspace/proj", 2, 1)

    back = workspace.copy_out("proj", tmp_path / "back")
    assert (back.files, back.skipped_count) == (2, 0)
    assert (tmp_path / "back" / "a.txt").read_text() == "alpha\n"
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()


def test_a_file_comes_out_into_an_existing_directory_without_its_setuid_bit(
    workspace: Workspace, tmp_path: Path
) -> None:
    assert workspace.exec("echo hi > tool && chmod 4755 tool").exit_code == 0
    result = workspace.copy_out("tool", tmp_path)
    copied = tmp_path / "tool"
    assert result.path == str(copied)
    assert copied.read_text() == "hi\n"
    assert not stat.S_IMODE(copied.stat().st_mode) & stat.S_ISUID


def test_a_host_link_leading_out_is_refused_and_nothing_lands(workspace: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "evil"
    source.mkdir()
    (source / "ok.txt").write_text("ok\n")
    (source / "pw").symlink_to("/etc/passwd")
    with pytest.raises(RoostError) as refused:
        workspace.copy_in(source, "evil")
    assert refused.value.code == "archive_rejected"
    assert "evil" not in [entry.name for entry in workspace.files.list("/workspace").entries]


def test_a_shell_can_run_one_command_on_its_terminal(workspace: Workspace) -> None:
    """What `exec -t` runs on: the command itself on the PTY, its exit status kept."""
    import threading

    seen: list[bytes] = []
    shell = workspace.shells.open(command=["sh", "-c", "test -t 0 && echo ON-A-TTY; exit 3"], cols=77, rows=21)
    last = workspace.shells.attach(shell.id, seen.append, threading.Event(), cursor=0)
    assert b"ON-A-TTY" in b"".join(seen)
    final = last if last.state != "running" else next(s for s in workspace.shells.list() if s.id == shell.id)
    assert (final.command, final.exit_code) == (("sh", "-c", "test -t 0 && echo ON-A-TTY; exit 3"), 3)
