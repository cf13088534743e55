"""Host paths named by a model stay inside the roots the operator allowed, symlinks resolved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roost.errors import InvalidArgument
from roost.mcp.host_paths import PATH_NOT_ALLOWED, AllowedRoots


@pytest.fixture
def root(tmp_path: Path) -> Path:
    allowed = tmp_path / "allowed"
    (allowed / "repo").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    return allowed


def _refused(roots: AllowedRoots, path: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        roots.confine(path, param="seed_path")
    return info.value


def test_path_under_a_root_is_allowed_and_resolved(root: Path) -> None:
    roots = AllowedRoots([str(root)])
    assert roots.confine(str(root / "repo" / ".." / "repo"), param="seed_path") == os.path.realpath(root / "repo")
    assert roots.confine(str(root), param="seed_path") == os.path.realpath(root)


def test_path_outside_every_root_is_refused_with_a_hint_naming_allow_root(root: Path) -> None:
    error = _refused(AllowedRoots([str(root)]), str(root.parent / "secret"))
    assert error.code == PATH_NOT_ALLOWED
    assert "--allow-root" in error.hint
    assert str(root) not in error.message


def test_symlink_inside_the_root_pointing_outside_is_refused(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "secret")
    assert _refused(AllowedRoots([str(root)]), str(root / "escape")).code == PATH_NOT_ALLOWED


def test_dotdot_escape_is_refused(root: Path) -> None:
    assert _refused(AllowedRoots([str(root)]), f"{root}/repo/../../secret").code == PATH_NOT_ALLOWED


def test_sibling_sharing_the_roots_name_as_prefix_is_refused(root: Path) -> None:
    sibling = root.parent / (root.name + "-other")
    sibling.mkdir()
    assert _refused(AllowedRoots([str(root)]), str(sibling)).code == PATH_NOT_ALLOWED


def test_symlinked_root_admits_paths_through_its_real_location(root: Path) -> None:
    link = root.parent / "link-to-allowed"
    link.symlink_to(root)
    roots = AllowedRoots([str(link)])
    assert roots.confine(str(root / "repo"), param="source") == os.path.realpath(root / "repo")


def test_any_of_several_roots_admits_a_path(root: Path) -> None:
    roots = AllowedRoots([str(root), str(root.parent / "secret")])
    assert roots.confine(str(root.parent / "secret"), param="source") == os.path.realpath(root.parent / "secret")


def test_root_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        AllowedRoots([str(tmp_path / "missing")])
    with pytest.raises(InvalidArgument):
        AllowedRoots([])


def test_empty_path_is_an_invalid_argument(root: Path) -> None:
    assert _refused(AllowedRoots([str(root)]), "").code == "invalid_argument"
