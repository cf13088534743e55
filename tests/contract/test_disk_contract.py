"""`workspace disk` on stopped workspaces of every backend here (mock, sandbox): the host-side reader
never follows a link the workspace made, pages like file listings, and exports by export's rules."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost import Roost, RoostError, Workspace

BIG = 200 * 1024 * 1024
MARK_AT = 150_000_000
ODD = os.fsdecode(b"na\xefve.txt")  # not UTF-8
SETUP = (
    "mkdir -p sub/deep && echo hello > hello.txt && echo inner > sub/deep/inner.txt"
    " && ln -s /etc/passwd out && ln -s /etc linkdir && ln -s deep/inner.txt sub/same"
    " && cp hello.txt suid && chmod 4777 suid"
    f" && printf odd > \"$(printf 'na\\357ve.txt')\""
    f" && truncate -s {BIG} big && printf MARK | dd of=big bs=1 seek={MARK_AT} conv=notrunc status=none"
)


@pytest.fixture
def stopped(roost: Roost, workspace: Workspace, backend: str) -> Iterator[Workspace]:
    assert workspace.exec(SETUP).exit_code == 0
    if backend == "sandbox":  # outside /workspace: the overlay's upper layer (never on mock: that is the host)
        assert workspace.exec("echo guest-only > /etc/roost-disk-test").exit_code == 0
    workspace.stop()
    yield workspace


def _code(call: object, *args: object, **kwargs: object) -> RoostError:
    with pytest.raises(RoostError) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    return raised.value


def test_list_shows_links_with_their_targets_and_never_follows_them(stopped: Workspace) -> None:
    entries = {entry.path: entry for entry in stopped.disk.list(recursive=True).entries}
    assert entries["/workspace/out"].type == "symlink" and entries["/workspace/out"].target == "/etc/passwd"
    assert entries["/workspace/linkdir"].type == "symlink"
    assert not any(path.startswith("/workspace/linkdir/") for path in entries)
    assert entries[f"/workspace/{ODD}"].size == 3
    assert entries["/workspace/big"].size == BIG
    assert entries["/workspace/sub/deep/inner.txt"].type == "file"
    lone = stopped.disk.list("linkdir")
    assert [entry.type for entry in lone.entries] == ["symlink"]


def test_list_pages_cover_the_whole_listing_once(stopped: Workspace) -> None:
    whole = [entry.path for entry in stopped.disk.list(recursive=True).entries]
    paged: list[str] = []
    cursor = None
    while True:
        page = stopped.disk.list(recursive=True, limit=2, cursor=cursor)
        paged += [entry.path for entry in page.entries]
        if page.next_cursor is None:
            break
        assert page.truncated
        cursor = page.next_cursor
    assert paged == whole


def test_read_a_window_of_a_200_mb_file_and_a_non_utf8_name(stopped: Workspace) -> None:
    window = stopped.disk.read("big", offset=MARK_AT - 1, max_bytes=6)
    assert window.data == b"\0MARK\0" and window.size == BIG and not window.eof
    assert stopped.disk.read(os.fsencode(f"/workspace/{ODD}")).data == b"odd"


def test_export_strips_setuid_and_leaves_links_out_of_the_tree_behind(stopped: Workspace, tmp_path: Path) -> None:
    result = stopped.disk.export("/workspace", tmp_path / "out")
    assert (tmp_path / "out" / "hello.txt").read_text() == "hello\n"
    assert (tmp_path / "out" / "suid").stat().st_mode & 0o7777 == 0o755
    assert os.readlink(tmp_path / "out" / "sub" / "same") == "deep/inner.txt"
    assert not (tmp_path / "out" / "out").exists() and not (tmp_path / "out" / "linkdir").is_symlink()
    assert {(s.path, s.reason) for s in result.skipped} >= {
        ("out", "absolute_symlink"),
        ("linkdir", "absolute_symlink"),
    }
    tar_result = stopped.disk.export("sub", tmp_path / "sub.tar", fmt="tar")
    with tarfile.open(tmp_path / "sub.tar") as tar:
        assert sorted(tar.getnames()) == ["deep", "deep/inner.txt", "same"]
    assert tar_result.files == 1


def test_usage_lists_the_largest_directories_first(stopped: Workspace) -> None:
    usage = stopped.disk.usage(top=2)
    assert usage.path == "/workspace" and usage.top[0].path == "/workspace"
    assert len(usage.top) == 2 and usage.top[1].path == "/workspace/sub"
    assert usage.total_bytes < 50 * 1024 * 1024  # the 200 MB file is holes
    assert usage.files >= 6
    one = stopped.disk.usage("hello.txt")
    assert (one.files, one.dirs, one.top[0].path) == (1, 0, "/workspace/hello.txt")


def test_bad_input_gives_clear_errors(stopped: Workspace) -> None:
    assert _code(stopped.disk.read, "nope.txt").code == "path_not_found"
    assert _code(stopped.disk.read, "big", offset=-1).code == "invalid_argument"
    assert _code(stopped.disk.read, "sub").code == "is_a_directory"
    assert _code(stopped.disk.read, "linkdir/passwd").code == "path_not_allowed"
    assert _code(stopped.disk.list, cursor="not-a-cursor").code == "invalid_argument"
    assert _code(stopped.disk.usage, top=0).code == "invalid_argument"
    assert _code(stopped.disk.export, "hello.txt", "/definitely/missing/dir/out").code == "output_dir_missing"
    unsupported = _code(stopped.disk.check)
    assert unsupported.code == "unsupported" and "host directories" in unsupported.hint
    assert _code(stopped.disk.grow, "10G").code == "unsupported"


def test_a_running_workspace_is_refused_with_the_hint_to_stop_it(workspace: Workspace) -> None:
    refused = _code(workspace.disk.list)
    assert refused.code == "workspace_running"
    assert f"roost.workspace('{workspace.id}').stop()" in refused.hint


def test_the_sandbox_disk_holds_what_the_workspace_wrote_outside_workspace(stopped: Workspace, backend: str) -> None:
    if backend != "sandbox":
        assert _code(stopped.disk.list, "/etc").code == "path_not_found"
        return
    assert stopped.disk.read("/etc/roost-disk-test").data == b"guest-only\n"
    top = [entry.path for entry in stopped.disk.list("/").entries]
    assert "/etc" in top and "/workspace" in top
