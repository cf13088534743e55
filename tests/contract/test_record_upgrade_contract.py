"""What a workspace's record keeps, on every backend: the image it was made from, and a boot
record its backend reads back, also when an older roost wrote it (schema 1: an untyped `runtime`
object): such a workspace is reached, described, stopped, started and deleted from what it kept."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import pids_with_env
from roost import Roost, Workspace
from roost.backends.processes import WORKSPACE_MARKER
from roost.store.record_versions import SCHEMA_VERSION


def _rewrite_as_schema_1(record_file: Path) -> None:
    """The record as schema 1 kept it: the backend's facts, the image key and the agent's socket
    path in one `runtime` object."""
    data = json.loads(record_file.read_text())
    boot, image = data.pop("boot"), data.pop("image")
    del data["ports"], data["network"]
    runtime = {**boot, "image": image, "socket": str(record_file.with_name("agent.sock"))}
    old = {**data, "network_policy": data["network_policy"]["mode"], "schema_version": 1, "runtime": runtime}
    record_file.write_text(json.dumps(old))


def test_a_workspace_recorded_by_an_older_roost_is_reached_stopped_started_and_deleted(
    roost: Roost, workspace: Workspace, backend: str
) -> None:
    workspace.files.write("kept.txt", "kept\n")
    protections = workspace.info().protections
    record_file = roost.home / "workspaces" / workspace.id / "workspace.json"
    _rewrite_as_schema_1(record_file)

    with Roost(home=roost.home, backend=backend) as later:  # another process: nothing cached
        old = later.workspace(workspace.id)
        assert old.exec(["cat", "kept.txt"]).stdout == "kept\n"
        assert old.info().protections == protections

        assert old.stop().state == "stopped"
        assert json.loads(record_file.read_text())["schema_version"] == SCHEMA_VERSION  # upgraded with its first change
        assert old.start().state == "running"
        assert old.exec(["cat", "kept.txt"]).stdout == "kept\n"

        old.delete()
    assert pids_with_env(WORKSPACE_MARKER, workspace.id) == set()
    assert not record_file.parent.exists()


def test_the_record_names_the_image_the_workspace_was_made_from(roost: Roost, workspace: Workspace) -> None:
    record = json.loads((roost.home / "workspaces" / workspace.id / "workspace.json").read_text())
    made_from = None if workspace.info().backend == "mock" else roost.inspect_env("debian:12").key
    assert made_from is None or made_from.startswith("sha256")
    # What `env prune` keeps, and what `start` boots again.
    assert record["image"] == made_from
