"""An engine given a backend of its own creates workspaces on it and reads their records through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import pids_with_env
from roost.backends.host_agent import HostAgentBoot
from roost.backends.mock import MockBackend
from roost.backends.processes import WORKSPACE_MARKER
from roost.errors import WorkspaceError
from roost.store.records import WorkspaceStore
from roost.workspace import lifecycle, operations
from roost.workspace.engine import Engine, read_boot


class EmbeddedBackend(MockBackend):
    """The mock backend under a name no built-in backend has."""

    name = "embedded"


def test_a_given_backend_runs_new_workspaces_and_reads_back_their_boot_records(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "home", "embedded", backends={"embedded": EmbeddedBackend()})
    created = lifecycle.create(engine, lifecycle.CreateOptions(env="debian:12"))
    ws_id = created.record.id
    try:
        record = engine.store.load(ws_id)
        assert (record.backend, type(record.boot)) == ("embedded", HostAgentBoot)
        echoed = operations.run_exec(engine, record, operations.ExecSpec(["echo", "on it"]))
        assert echoed.stdout == "on it\n"
        # Only that engine knows the backend: a store without it cannot read the record.
        with pytest.raises(WorkspaceError) as caught:
            WorkspaceStore(engine.home, read_boot).load(ws_id)
        assert caught.value.code == "workspace_corrupt"
    finally:
        lifecycle.delete(engine, ws_id)
        engine.close()
    assert pids_with_env(WORKSPACE_MARKER, ws_id) == set()
