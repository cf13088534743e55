"""Guest path resolution: component by component from the root fd, links followed only while inside."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from roost.agent.fs.paths import WorkspacePaths
from roost.agent.fs.resolve import MAX_LINK_HOPS, Beneath
from roost.protocol import OpError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "file.txt").write_text("inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "file.txt").write_text("outside\n")
    return root


@pytest.fixture
def paths(root: Path) -> WorkspacePaths:
    return WorkspacePaths(str(root))


def where(paths: WorkspacePaths, path: str, **kwargs: bool) -> tuple[str, bool]:
    """(root-relative path it resolves to, whether it exists)."""
    with paths.locate(path, **kwargs) as found:
        return found.rel, found.st is not None


def code(paths: WorkspacePaths, path: str, **kwargs: bool) -> str:
    with pytest.raises(OpError) as err:
        where(paths, path, **kwargs)
    return err.value.code


def test_plain_paths_resolve_relative_or_absolute(paths: WorkspacePaths) -> None:
    assert where(paths, "/workspace/sub/file.txt") == ("sub/file.txt", True)
    assert where(paths, "sub/file.txt") == ("sub/file.txt", True)
    assert where(paths, "sub/missing.txt") == ("sub/missing.txt", False)


def test_the_root_itself_resolves_to_the_root(paths: WorkspacePaths) -> None:
    with paths.locate("/workspace") as found:
        assert (found.rel, found.name) == ("", ".")
        assert found.st is not None and stat.S_ISDIR(found.st.st_mode)
    with paths.opened("/workspace/", os.O_RDONLY | os.O_DIRECTORY) as opened:
        assert opened.rel == "" and sorted(os.listdir(opened.fd)) == ["sub"]


def test_dotdot_within_the_path_is_fine_but_never_above_the_root(paths: WorkspacePaths) -> None:
    assert where(paths, "sub/deeper/../file.txt") == ("sub/file.txt", True)
    assert code(paths, "/workspace/../etc/passwd") == "path_outside_workspace"
    assert code(paths, "sub/../../outside/file.txt") == "path_outside_workspace"


def test_a_link_inside_the_workspace_is_followed(paths: WorkspacePaths, root: Path) -> None:
    (root / "to-file").symlink_to("sub/file.txt")
    (root / "sub" / "up").symlink_to("..")
    assert where(paths, "to-file") == ("sub/file.txt", True)
    assert where(paths, "sub/up/sub/up/to-file") == ("sub/file.txt", True)


def test_a_final_link_is_kept_as_itself_when_not_followed(paths: WorkspacePaths, root: Path) -> None:
    (root / "to-file").symlink_to("sub/file.txt")
    with paths.locate("to-file", follow_final=False) as found:
        assert found.rel == "to-file"
        assert found.st is not None and stat.S_ISLNK(found.st.st_mode)


def test_an_absolute_link_under_workspace_resolves_from_the_root(paths: WorkspacePaths, root: Path) -> None:
    (root / "abs").symlink_to("/workspace/sub")
    assert where(paths, "abs/file.txt") == ("sub/file.txt", True)


def test_links_out_of_the_workspace_are_refused(paths: WorkspacePaths, root: Path, tmp_path: Path) -> None:
    (root / "host-abs").symlink_to(tmp_path / "outside")  # the host's real path: still outside
    (root / "etc").symlink_to("/etc")
    (root / "sub" / "climb").symlink_to("../../outside")
    (root / "looks-like").symlink_to("/workspace-not")
    for path in ("host-abs/file.txt", "etc/passwd", "sub/climb/file.txt", "looks-like", "host-abs"):
        assert code(paths, path) == "path_outside_workspace", path


def test_a_link_out_is_fine_as_the_final_name_when_not_followed(paths: WorkspacePaths, root: Path) -> None:
    (root / "etc").symlink_to("/etc")
    assert where(paths, "etc", follow_final=False) == ("etc", True)
    assert code(paths, "etc/passwd", follow_final=False) == "path_outside_workspace"


def test_link_loops_end_with_a_clear_error(paths: WorkspacePaths, root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    (root / "self").symlink_to("self/x")
    assert code(paths, "a") == "invalid_argument"
    assert code(paths, "self") == "invalid_argument"


def test_chains_up_to_the_kernel_limit_are_followed_and_longer_ones_refused(paths: WorkspacePaths, root: Path) -> None:
    (root / "l0").symlink_to("sub/file.txt")
    for i in range(1, MAX_LINK_HOPS + 1):
        (root / f"l{i}").symlink_to(f"l{i - 1}")
    assert where(paths, f"l{MAX_LINK_HOPS - 1}") == ("sub/file.txt", True)
    assert code(paths, f"l{MAX_LINK_HOPS}") == "invalid_argument"


def test_a_dangling_link_resolves_to_its_missing_target(paths: WorkspacePaths, root: Path) -> None:
    (root / "dangling").symlink_to("sub/not-yet")
    assert where(paths, "dangling") == ("sub/not-yet", False)
    (root / "dangling-dir").symlink_to("nowhere/at/all")
    assert code(paths, "dangling-dir") == "path_not_found"


def test_a_file_used_as_a_directory_is_not_a_directory(paths: WorkspacePaths) -> None:
    assert code(paths, "sub/file.txt/x") == "not_a_directory"
    assert code(paths, "missing/x") == "path_not_found"


def test_nul_bytes_and_empty_paths_are_invalid(paths: WorkspacePaths) -> None:
    assert code(paths, "sub/\0file") == "invalid_argument"
    assert code(paths, "") == "invalid_argument"


def test_make_parents_creates_directories_but_never_through_a_link_out(
    paths: WorkspacePaths, root: Path, tmp_path: Path
) -> None:
    assert where(paths, "new/dirs/f", make_parents=True) == ("new/dirs/f", False)
    assert (root / "new" / "dirs").is_dir()
    (root / "out").symlink_to(tmp_path / "outside")
    assert code(paths, "out/made/f", make_parents=True) == "path_outside_workspace"
    assert not (tmp_path / "outside" / "made").exists()


def test_follow_links_false_refuses_any_link_on_the_way(paths: WorkspacePaths, root: Path) -> None:
    (root / "alias").symlink_to("sub")
    assert code(paths, "alias/file.txt", follow_links=False) == "invalid_argument"
    assert where(paths, "sub/file.txt", follow_links=False) == ("sub/file.txt", True)


def test_opened_follows_a_final_link_inside_and_refuses_one_out(paths: WorkspacePaths, root: Path) -> None:
    (root / "to-file").symlink_to("sub/file.txt")
    (root / "etc").symlink_to("/etc")
    with paths.opened("to-file", os.O_RDONLY) as opened:
        assert (opened.rel, os.read(opened.fd, 100)) == ("sub/file.txt", b"inside\n")
    with pytest.raises(OpError) as err, paths.opened("etc/passwd", os.O_RDONLY):
        pass
    assert err.value.code == "path_outside_workspace"


def test_a_working_directory_must_be_a_directory(paths: WorkspacePaths, root: Path) -> None:
    (root / "to-sub").symlink_to("sub")
    with paths.directory("to-sub") as opened:
        assert opened.rel == "sub"
        assert os.stat(opened.fd).st_ino == (root / "sub").stat().st_ino
    for path in ("sub/file.txt", "missing"):
        with pytest.raises(OpError) as err, paths.directory(path):
            pass
        assert err.value.code == "path_not_found"


def test_a_top_without_an_alias_refuses_every_absolute_link(root: Path) -> None:
    (root / "abs").symlink_to("/workspace/sub")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as err:
            Beneath(fd).locate("abs/file.txt")
        assert err.value.errno == errno.EXDEV
    finally:
        os.close(fd)


def test_lookups_leave_no_descriptor_open(paths: WorkspacePaths, root: Path) -> None:
    (root / "to-file").symlink_to("sub/deeper/../file.txt")
    (root / "etc").symlink_to("/etc")
    paths.root_fd()
    before = _open_under(root)
    for _ in range(20):
        where(paths, "to-file")
        with pytest.raises(OpError):
            where(paths, "etc/passwd")
        with paths.opened("sub/deeper", os.O_RDONLY | os.O_DIRECTORY):
            pass
    assert _open_under(root) == before


def _open_under(root: Path) -> list[str]:
    """What this process holds open in `root` (only there: other threads of a test worker open files too)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed since it was listed
        if target == str(root) or target.startswith(f"{root}/") or target == "/etc":
            held.append(target)
    return sorted(held)
