"""kill -9 of the process doing a create, and of a `roost run`: what they leave is visible and goes away.

A create killed after its record exists shows as `failed` on the next command and
`delete` removes everything, sandbox processes included. A killed `roost run` leaves
a workspace labelled `roost.run=1` with a short TTL, which reaping removes once it
passes, but never while the run is alive.

Harmless when it fails: the processes killed are CLI processes this test started
(SIGSTOP first, so the kill lands where the test means it to); `roost` teardown
deletes every workspace, processes included.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from e2e.conftest import RoostCli
from helpers import pids_with_env, processes_mentioning, wait_until
from roost import Roost
from roost.backends.processes import WORKSPACE_MARKER
from roost.store.records import WorkspaceRecord, WorkspaceStore
from roost.workspace.engine import read_boot

SEED_FILES = 256  # x 64 KiB: seeding and the baseline take long enough to be caught in the act
DEADLINE = 30.0


@contextmanager
def _cli_process(cli: RoostCli, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cli.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli.env
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(DEADLINE)


def _kill_while(proc: subprocess.Popen[bytes], still: Callable[[], bool]) -> None:
    """Freeze `proc`, check it is still where the test wants it, then SIGKILL it."""
    os.kill(proc.pid, signal.SIGSTOP)
    assert still(), "the command got past the point the test wanted to interrupt"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(DEADLINE)


def _seed(root: Path) -> Path:
    root.mkdir()
    for index in range(SEED_FILES):
        (root / f"f{index:03}").write_bytes(os.urandom(64 * 1024))
    return root


def _only_record(store: WorkspaceStore) -> WorkspaceRecord | None:
    records = [r for r in store.records() if isinstance(r, WorkspaceRecord)]
    return records[0] if len(records) == 1 else None


def _nothing_left(roost: Roost, ws_id: str) -> bool:
    return not pids_with_env(WORKSPACE_MARKER, ws_id) and not processes_mentioning(
        str(roost.home / "workspaces" / ws_id)
    )


def test_a_create_killed_while_seeding_shows_failed_and_delete_removes_everything(
    roost: Roost, cli: RoostCli, tmp_path: Path
) -> None:
    store = WorkspaceStore(roost.home, read_boot)
    seed = _seed(tmp_path / "seed")

    def seeding() -> WorkspaceRecord | None:
        record = _only_record(store)
        return record if record is not None and record.state == "creating" and record.boot else None

    with _cli_process(cli, "workspace", "create", "debian:12", "--seed-path", str(seed)) as proc:
        ws_id = wait_until(seeding, timeout=DEADLINE, interval=0.001, what="the create to start seeding").id
        _kill_while(proc, lambda: store.load(ws_id).state == "creating")
    assert pids_with_env(WORKSPACE_MARKER, ws_id), "the killed create left its workspace running (delete's job)"

    (listed,) = cli.json("workspace", "list")["workspaces"]
    status = cli.json("workspace", "status", ws_id)
    exec_error = cli.error(cli("workspace", "exec", ws_id, "--json", "--", "true"), 5, "workspace_failed")

    for shown in (listed, status):
        assert (shown["id"], shown["state"]) == (ws_id, "failed")
        assert "interrupted" in shown["health"]
        assert f"`roost workspace delete {ws_id}`" in shown["hint"]
    assert exec_error["hint"] == status["hint"]

    cli("workspace", "delete", ws_id, check_rc=0)

    assert _nothing_left(roost, ws_id)
    assert cli.workspace_dirs() == []


def test_a_killed_run_leaves_a_labelled_workspace_that_is_reaped_only_once_its_owner_is_gone(
    roost: Roost, cli: RoostCli
) -> None:
    store = WorkspaceStore(roost.home, read_boot)

    def running() -> WorkspaceRecord | None:
        record = _only_record(store)
        if record is None or record.state != "running":
            return None
        started = roost.workspace(record.id).files.list("/workspace").entries
        return record if any(entry.name == "started" for entry in started) else None

    with _cli_process(cli, "run", "debian:12", "--", "sh", "-c", "touch started && exec sleep 300") as proc:
        record = wait_until(running, timeout=DEADLINE, interval=0.01, what="the run's command to start")
        assert record.labels == {"roost.run": "1"}
        assert record.ttl_seconds is not None and 0 < record.ttl_seconds <= 600
        # Expired while its run is alive: reaping must leave it alone.
        store.update(record.id, lambda r: r.replace(expires_at="2000-01-01T00:00:00.000000Z"))
        assert [w["id"] for w in cli.json("workspace", "list")["workspaces"]] == [record.id]
        _kill_while(proc, lambda: store.load(record.id).state == "running")

    assert pids_with_env(WORKSPACE_MARKER, record.id), "the killed run left its command running (reaping's job)"
    assert cli.json("workspace", "list")["workspaces"] == []  # listing reaps what expired
    assert _nothing_left(roost, record.id)
    assert cli.workspace_dirs() == []
