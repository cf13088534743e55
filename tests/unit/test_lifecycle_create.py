"""A create that fails once its directory exists takes the directory with it; a directory that is
left anyway (a crash) lists under its own id, not as '?'."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from roost import Roost
from roost.store.records import WorkspaceRecord, WorkspaceStore
from roost.workspace import lifecycle
from roost.workspace.engine import Engine, read_boot


class UnsavableStore(WorkspaceStore):
    """A store whose record writes fail the way a full disk or a Ctrl-C makes them fail."""

    def __init__(self, home: Path, failure: BaseException) -> None:
        super().__init__(home, read_boot)
        self.failure = failure
        self.attempts = 0

    def save(self, record: WorkspaceRecord) -> None:
        self.attempts += 1
        raise self.failure


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_create_whose_first_record_write_fails_leaves_no_directory(tmp_path: Path, failure: BaseException) -> None:
    engine = Engine(tmp_path / "home", "mock")
    store = UnsavableStore(engine.home, failure)
    engine.store = store
    with pytest.raises(type(failure)):
        lifecycle.create(engine, lifecycle.CreateOptions(env="debian:12", name="doomed"))
    assert store.attempts == 1
    assert list(store.root.iterdir()) == []


def test_a_directory_without_a_record_lists_under_its_id_with_the_way_out(tmp_path: Path) -> None:
    roost = Roost(home=tmp_path / "home", backend="mock")
    leftover = roost.home / "workspaces" / "ws-0123456789"
    leftover.mkdir(parents=True)
    (listed,) = roost.list_workspaces()
    assert (listed.id, listed.state) == ("ws-0123456789", "corrupt")
    assert listed.health is not None and "has no record" in listed.health
    assert listed.hint is not None and "roost.workspace('ws-0123456789').delete(force=True)" in listed.hint
