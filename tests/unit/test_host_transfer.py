"""Seeding and sync push read host trees without ever following a link out of them."""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from roost.confinement import ConfinedPath
from roost.errors import RoostError
from roost.workspace.transfer import tar_stream

SECRET = b"host-only secret\n"


def members(source: str | Path | ConfinedPath, home: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    data = b"".join(tar_stream(source, home=home))
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            body = tar.extractfile(info).read() if info.isreg() else b""  # type: ignore[union-attr]
            found[info.name] = (info, body)
    return found


def error_code(source: str | Path | ConfinedPath, home: Path) -> str:
    with pytest.raises(RoostError) as caught:
        b"".join(tar_stream(source, home=home))
    return caught.value.code


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "roost-home"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    return outside


def test_links_inside_a_seed_are_sent_as_links_and_never_read_through(tmp_path: Path, home: Path, secret: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file.txt").write_text("mine\n")
    (tree / "abs-file").symlink_to(secret / "secret.txt")
    (tree / "abs-dir").symlink_to(secret)
    (tree / "rel").symlink_to("sub/file.txt")

    found = members(tree, home)

    assert sorted(found) == ["abs-dir", "abs-file", "rel", "sub", "sub/file.txt"]
    assert found["abs-file"][0].issym() and found["abs-file"][0].linkname == str(secret / "secret.txt")
    assert found["abs-dir"][0].issym()
    assert found["rel"][0].linkname == "sub/file.txt"
    assert all(SECRET not in body for _info, body in found.values())


def test_hard_linked_files_go_once_then_as_links_and_special_files_stay_home(tmp_path: Path, home: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("same inode\n")
    os.link(tree / "a", tree / "b")
    os.mkfifo(tree / "pipe")  # opening it would hang a naive packer
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sock"))
        found = members(tree, home)

    assert sorted(found) == ["a", "b"]
    assert found["b"][0].islnk() and found["b"][0].linkname == "a"
    assert {(info.uid, info.gid) for info, _ in found.values()} == {(0, 0)}


def test_a_seed_path_given_as_a_symlink_is_resolved_once_as_the_callers_own(
    tmp_path: Path, home: Path, secret: Path
) -> None:
    (tmp_path / "alias").symlink_to(secret)
    assert members(tmp_path / "alias", home)["secret.txt"][1] == SECRET


def test_a_confined_path_never_passes_through_a_symlink(tmp_path: Path, home: Path, secret: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f").write_text("ok\n")
    (root / "link").symlink_to(secret)
    (root / "inside-link").symlink_to("real")

    assert "f" in members(ConfinedPath(str(root), ("real",), "real"), home)
    for parts in (("link",), ("link", "secret.txt"), ("inside-link",), ("inside-link", "f")):
        assert error_code(ConfinedPath(str(root), parts, "/".join(parts)), home) == "path_not_allowed"


def test_a_confined_path_never_reaches_roosts_own_state(tmp_path: Path, home: Path) -> None:
    (home / "workspaces").mkdir()
    (home / "workspaces" / "record.json").write_text("{}")
    root = str(tmp_path)
    assert error_code(ConfinedPath(root, (home.name,), "roost-home"), home) == "path_not_allowed"
    assert error_code(ConfinedPath(root, (home.name, "workspaces"), "x"), home) == "path_not_allowed"


def test_a_confined_tree_holding_roosts_state_fails_when_the_walk_gets_there(tmp_path: Path, home: Path) -> None:
    # The state directory is found by identity, not by name.
    assert error_code(ConfinedPath(str(tmp_path), (), "."), home) == "path_not_allowed"


def test_missing_and_unusable_sources_have_clear_codes(tmp_path: Path, home: Path) -> None:
    (tmp_path / "plain.txt").write_text("not a tar\n")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(RoostError) as missing:
        tar_stream(tmp_path / "nope", home=home)
    assert missing.value.code == "seed_not_found"
    with pytest.raises(RoostError) as invalid:
        tar_stream(tmp_path / "plain.txt", home=home)
    assert invalid.value.code == "seed_invalid"
    with pytest.raises(RoostError) as special:
        tar_stream(tmp_path / "pipe", home=home)
    assert special.value.code == "host_path_unusable"
