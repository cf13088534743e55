"""`workspace fork` in the CLI (lines, or `--json`) and as MCP's `workspace_fork`: one result in both;
`list` and `status` show a child's parent; bad input is refused before anything is made; a failure
half-way deletes the children already made."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from cli_helpers import RoostCli
from mcp_helpers import call, call_error, mcp_session

from roost import Roost, RoostError
from roost.workspace import forking, lifecycle

pytestmark = pytest.mark.e2e
RESULT_FIELDS = {
    "parent",
    "snapshot",
    "files",
    "size_bytes",
    "workspaces",
    "shells_not_copied",
    "ports_not_copied",
    "secrets_not_copied",
}


def test_the_cli_forks_and_lists_each_child_with_its_parent(roost: RoostCli) -> None:
    parent = roost.create()
    roost("workspace", "exec", parent, "--", "sh", "-c", "echo draft > notes.txt", check_rc=0)

    human = roost("workspace", "fork", parent, "--count", "2", "--name-prefix", "try", check_rc=0).stdout
    found = roost.json("workspace", "fork", parent, "--label", "round=2")
    listed = roost.json("workspace", "list")["workspaces"]
    status = roost("workspace", "status", "try-1", check_rc=0).stdout

    lines = human.splitlines()
    assert lines[0].startswith(f"forked {parent} (its state now: 1 file, 6 bytes) into 2 workspaces:")
    assert [line.split()[1] for line in lines[1:3]] == ["(try-1)", "(try-2)"]
    assert set(found) == RESULT_FIELDS
    (child,) = found["workspaces"]
    assert (child["parent"], child["labels"], found["files"]) == (parent, {"round": "2"}, 1)
    assert sorted(w["parent"] or "-" for w in listed) == ["-", parent, parent, parent]
    assert f"parent   {parent}" in status
    assert roost("workspace", "exec", "try-2", "--", "cat", "notes.txt", check_rc=0).stdout == "draft\n"


def test_the_cli_refuses_bad_input_with_the_usual_codes(roost: RoostCli) -> None:
    parent = roost.create()
    for args, exit_code, code in (
        (("--count", "0"), 2, "invalid_argument"),
        (("--count", "101"), 2, "invalid_argument"),
        (("--snapshot", "missing"), 3, "snapshot_not_found"),
    ):
        proc = roost("--json", "workspace", "fork", parent, *args)
        roost.error(proc, exit_code, code)
    assert len(roost.json("workspace", "list")["workspaces"]) == 1


@pytest.mark.anyio
async def test_mcp_workspace_fork_has_the_cli_shape(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(60):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws = (await call(session, "workspace_create"))["id"]
            await call(session, "file_write", workspace=ws, path="a.txt", content="one\n")
            found = await call(session, "workspace_fork", workspace=ws, count=2, name_prefix="m")
            refused = await call_error(session, "workspace_fork", workspace=ws, snapshot="missing")
            listed = await call(session, "workspace_list")
            read = await call(session, "file_read", workspace="m-2", path="a.txt")

    assert set(found) == RESULT_FIELDS
    assert [(w["name"], w["parent"]) for w in found["workspaces"]] == [("m-1", ws), ("m-2", ws)]
    assert refused["code"] == "snapshot_not_found" and "roost " not in refused["hint"]
    assert len(listed["workspaces"]) == 3
    assert read["content"] == "one\n"


def test_a_failure_half_way_deletes_the_children_already_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real_create = lifecycle.create

    def third_fails(*args: Any, **kwargs: Any) -> lifecycle.Created:
        if len(made) == 2:
            raise RoostError("the third child could not boot", code="agent_start_failed")
        created = real_create(*args, **kwargs)
        made.append(created.record.id)
        return created

    monkeypatch.setattr(forking, "PARALLEL_CREATES", 1)
    monkeypatch.setattr(forking.lifecycle, "create", third_fails)
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        parent = roost.create_workspace("debian:12")
        with pytest.raises(RoostError) as failed:
            parent.fork(4)
        assert failed.value.code == "agent_start_failed"
        assert len(made) == 2
        assert [info.id for info in roost.list_workspaces()] == [parent.id]
        assert [s.name for s in parent.snapshots.list()] == ["baseline"]
        parent.delete()


def test_progress_hears_the_copy_begin_then_each_child_made(tmp_path: Path) -> None:
    heard: list[tuple[str, int, int]] = []
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        parent = roost.create_workspace("debian:12")
        forked = parent.fork(3, progress=lambda step, done, total: heard.append((step, done, total)))
        made = {f"made {child.id}" for child in forked}
        for child in forked:
            child.delete()
        parent.delete()

    assert heard[0] == ("copying the parent's tree", 0, 3)
    assert [(done, total) for _step, done, total in heard[1:]] == [(1, 3), (2, 3), (3, 3)]
    assert {step for step, _done, _total in heard[1:]} == made
