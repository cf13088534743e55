"""The SDK's workspace handles are bound once to their workspace and read its record once per call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roost import Roost, RoostError, Workspace
from roost.store.records import WorkspaceRecord, WorkspaceStore
from roost.workspace.engine import read_boot


class CountingStore(WorkspaceStore):
    """A store that counts the records it reads."""

    def __init__(self, home: Path) -> None:
        super().__init__(home, read_boot)
        self.loads = 0

    def load(self, ws_id: str) -> WorkspaceRecord:
        self.loads += 1
        return super().load(ws_id)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, CountingStore]]:
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        created = roost.create_workspace("debian:12")
        store = CountingStore(roost.home)
        created._bound.engine.store = store
        with created:
            yield created, store


CALLS: dict[str, Callable[[Workspace], object]] = {
    "info": lambda ws: ws.info(),
    "exec": lambda ws: ws.exec(["true"]),
    "files.write": lambda ws: ws.files.write("note.txt", "hi\n"),
    "files.list": lambda ws: ws.files.list(),
    "shells.list": lambda ws: ws.shells.list(),
    "services.list": lambda ws: ws.services.list(),
    "snapshots.list": lambda ws: ws.snapshots.list(),
    "diff": lambda ws: ws.diff(),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_handle_call_reads_the_workspace_record_once(
    workspace: tuple[Workspace, CountingStore], call: object
) -> None:
    ws, store = workspace
    assert callable(call)
    call(ws)
    assert store.loads == 1


def test_a_handle_sees_a_delete_made_through_another_handle(tmp_path: Path) -> None:
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        ws = roost.create_workspace("debian:12")
        roost.workspace(ws.id).delete()
        with pytest.raises(RoostError) as caught:
            ws.files.list()
        assert caught.value.code == "workspace_not_found"
