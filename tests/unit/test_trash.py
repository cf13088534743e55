"""Tombstones of deleted workspaces: out of sight in one rename, freed later, reaped when left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from helpers import wait_until
from roost.errors import StorageError
from roost.store import trash
from roost.store.trash import STALE_SECONDS, Trash, remove_tree


def _tree(root: Path, files: int = 20) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    for index in range(files):
        (root / "a" / "b" / f"f{index}").write_bytes(b"x" * 100)
    return root


def test_bury_moves_the_whole_directory_away_under_a_name_without_the_workspace_id(tmp_path: Path) -> None:
    home = tmp_path / "home"
    doomed = _tree(home / "workspaces" / "ws-0123456789")

    tomb = Trash(home).bury(doomed)

    assert not doomed.exists()
    assert tomb.parent == home / ".trash" and "ws-" not in tomb.name
    assert len(list((tomb / "a" / "b").iterdir())) == 20


def test_release_frees_the_space_after_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    tomb = Trash(home).bury(_tree(home / "workspaces" / "ws-0123456789"))
    with monkeypatch.context() as patch:
        patch.setattr(trash, "_low_on_space", lambda path: False)
        Trash(home).release(tomb, "workspace ws-0123456789")

    wait_until(lambda: not tomb.exists(), timeout=10, what="the detached remover to free the tombstone")


def test_release_on_a_nearly_full_disk_frees_the_space_before_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    tomb = Trash(home).bury(_tree(home / "workspaces" / "ws-0123456789"))
    with monkeypatch.context() as patch:
        patch.setattr(trash, "_low_on_space", lambda path: True)
        Trash(home).release(tomb, "workspace ws-0123456789")

    assert not tomb.exists()


def test_reap_removes_only_tombstones_whose_remover_is_long_gone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    box = Trash(home)
    young = box.bury(_tree(home / "workspaces" / "ws-0000000001"))
    old = box.bury(_tree(home / "workspaces" / "ws-0000000002"))
    backdated = old.with_name(f"{time.time_ns() - (STALE_SECONDS + 5) * 1_000_000_000}-{old.name.split('-')[1]}")
    old.rename(backdated)

    Trash(home).reap()

    assert box.tombstones() == [young.name]


@pytest.mark.skipif(os.geteuid() == 0, reason="root is never refused by permission bits")
def test_remove_tree_gets_through_directories_a_workspace_locked_itself_out_of(tmp_path: Path) -> None:
    root = _tree(tmp_path / "ws")
    (root / "a" / "b").chmod(0)
    (root / "a").chmod(0o500)

    remove_tree(root, "workspace ws-0123456789")

    assert not root.exists()


def test_remove_tree_reports_what_it_could_not_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "ws")
    real_unlink = os.unlink

    def refuse(path: str, *args: object, **kwargs: object) -> None:
        if str(path) == "f3":
            raise OSError(16, "Device or resource busy")
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(os, "unlink", refuse)
        with pytest.raises(StorageError) as caught:
            remove_tree(root, "workspace ws-0123456789")
    assert caught.value.code == "delete_incomplete"
    assert "f3" in caught.value.message and caught.value.hint
