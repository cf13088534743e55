"""Host paths named by a model are confined to roots the operator named; roost's own state never is one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roost.confinement import ConfinedPath
from roost.errors import InvalidArgument
from roost.mcp.host_paths import PATH_NOT_ALLOWED, ROOT_NOT_ALLOWED, AllowedRoots


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("user", "user/src", "user/.local/share/roost", "cache", "other")}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    return paths


def roots(layout: dict[str, Path], *given: Path | str) -> AllowedRoots:
    return AllowedRoots(
        [str(g) for g in given],
        roost_home=str(layout["user/.local/share/roost"]),
        image_cache=str(layout["cache"]),
        user_home=str(layout["user"]),
    )


def refused_root(layout: dict[str, Path], root: Path | str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        roots(layout, root)
    assert info.value.code == ROOT_NOT_ALLOWED
    assert "--allow-root" in info.value.hint
    return info.value


def refused_path(allowed: AllowedRoots, path: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        allowed.confine(path, param="seed_path")
    return info.value


@pytest.mark.parametrize(
    ("root", "why"),
    [
        ("/", "file system root"),
        ("user", "home directory"),
        ("", "home directory"),  # tmp_path itself holds the home
        ("user/.local", "state directory"),
        ("user/.local/share/roost", "state directory"),
        ("user/.local/share/roost/workspaces", "inside roost's state"),
        ("cache", "image cache"),
    ],
)
def test_roots_that_are_or_hold_the_home_roosts_state_or_cache_are_refused_at_start(
    layout: dict[str, Path], tmp_path: Path, root: str, why: str
) -> None:
    (layout["user/.local/share/roost"] / "workspaces").mkdir()
    error = refused_root(layout, root if root.startswith("/") else tmp_path / root)
    assert why in error.message


def test_a_root_that_reaches_the_state_through_a_symlink_is_refused(layout: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(layout["user/.local/share/roost"])
    refused_root(layout, tmp_path / "alias")


def test_a_root_that_is_not_a_directory_is_refused(layout: dict[str, Path], tmp_path: Path) -> None:
    refused_root(layout, tmp_path / "missing")


def test_a_project_directory_inside_the_home_is_a_fine_root(layout: dict[str, Path]) -> None:
    assert roots(layout, layout["user/src"]).roots == (str(layout["user/src"]),)


def test_a_path_under_a_root_becomes_a_confined_path_relative_to_it(layout: dict[str, Path]) -> None:
    allowed = roots(layout, layout["user/src"])
    src = str(layout["user/src"])
    assert allowed.confine(f"{src}/repo/../repo/x", param="seed_path") == ConfinedPath(
        src, ("repo", "x"), f"{src}/repo/../repo/x"
    )
    assert allowed.confine(src, param="seed_path") == ConfinedPath(src, (), src)


def test_an_output_never_lands_in_a_git_directory(layout: dict[str, Path]) -> None:
    allowed = roots(layout, layout["user/src"])
    hook = f"{layout['user/src']}/repo/.git/hooks/pre-commit"
    with pytest.raises(InvalidArgument) as caught:
        allowed.confine(hook, param="output_path", output=True)
    assert caught.value.code == "path_not_allowed"
    assert allowed.confine(hook, param="seed_path").parts[-1] == "pre-commit"  # reading one is fine


def test_relative_paths_are_taken_from_the_working_directory(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = roots(layout, layout["user/src"])
    monkeypatch.chdir(layout["user/src"])
    assert allowed.confine("repo", param="source").parts == ("repo",)


def test_a_path_outside_every_root_is_refused_without_naming_the_roots(layout: dict[str, Path]) -> None:
    allowed = roots(layout, layout["user/src"])
    for path in (str(layout["other"]), f"{layout['user/src']}/../other", f"{layout['user/src']}-sibling", "/etc"):
        error = refused_path(allowed, path)
        assert error.code == PATH_NOT_ALLOWED
        assert "--allow-root" in error.hint
        if str(layout["user/src"]) not in path:
            assert str(layout["user/src"]) not in error.message


def test_a_symlinked_root_admits_paths_spelled_either_way_and_walks_from_the_real_one(
    layout: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "link").symlink_to(layout["user/src"])
    allowed = roots(layout, tmp_path / "link")
    real = os.path.realpath(layout["user/src"])
    assert allowed.confine(str(tmp_path / "link" / "a"), param="source").root == real
    assert allowed.confine(str(layout["user/src"] / "a"), param="source").root == real


def test_the_innermost_of_nested_roots_claims_its_paths(layout: dict[str, Path]) -> None:
    inner = layout["user/src"] / "inner"
    inner.mkdir()
    allowed = roots(layout, layout["user/src"], inner)
    assert allowed.confine(str(inner / "x"), param="source") == ConfinedPath(str(inner), ("x",), str(inner / "x"))


def test_with_no_roots_every_host_path_is_refused_saying_how_to_allow_one(layout: dict[str, Path]) -> None:
    error = refused_path(roots(layout), str(layout["user/src"]))
    assert error.code == PATH_NOT_ALLOWED
    assert "allows no host paths" in error.message
    assert "--allow-root" in error.hint


def test_an_empty_path_is_an_invalid_argument(layout: dict[str, Path]) -> None:
    assert refused_path(roots(layout, layout["user/src"]), "").code == "invalid_argument"
