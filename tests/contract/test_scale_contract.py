"""Real-project scale, at a size the suite affords: thousands of files through snapshot and reset,
stored contents no workspace write can reach, an exec counter shared by processes, and deletes
whose interrupted removal never shows a half workspace.

Speed is measured in `benchmarks/scale.py`, never here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from roost import Roost, RoostError, Workspace
from roost.store.records import WorkspaceRecord, WorkspaceStore
from roost.store.trash import STALE_SECONDS, TRASH_DIR

FILES = 3000
CALL_TIMEOUT = 120

# Writes FILES files of distinct content under added/ (30 directories), then prints nothing.
MAKE_TREE = textwrap.dedent(
    f"""
    import os
    for i in range({FILES}):
        d = "added/d%02d" % (i % 30)
        os.makedirs(d, exist_ok=True)
        with open("%s/f%05d.txt" % (d, i), "w") as fh:
            fh.write("file %d\\n" % i * (1 + i % 7))
    """
)
# Prints {path: [sha256, link count]} for every regular file under added/.
SUMMARY = textwrap.dedent(
    """
    import hashlib, json, os
    found = {}
    for dirpath, _, names in os.walk("added"):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                found[path] = [hashlib.sha256(fh.read()).hexdigest(), os.lstat(path).st_nlink]
    print(json.dumps(found))
    """
)


def _summary(ws: Workspace) -> dict[str, list[object]]:
    result = ws.exec(["python3", "-c", SUMMARY])
    assert result.exit_code == 0, result.stderr
    summary: dict[str, list[object]] = json.loads(result.stdout)
    return summary


def test_thousands_of_files_survive_snapshot_reset_and_reset_back_exactly(workspace: Workspace) -> None:
    made = workspace.exec(["python3", "-c", MAKE_TREE])
    assert made.exit_code == 0, made.stderr
    before = _summary(workspace)
    assert len(before) == FILES

    snapshot = workspace.snapshots.create("many")
    assert snapshot.files >= FILES and snapshot.stored_bytes > 0

    # Away and straight back (the removed directory is set aside and comes back whole), then away, a
    # second reset that sets nothing aside, and back (every file written again from the snapshot's store).
    for resets_to_baseline in (1, 2):
        for _ in range(resets_to_baseline):
            workspace.reset()
        assert _summary(workspace) == {}

        back = workspace.reset(snapshot="many")
        assert back.restored >= FILES
        after = _summary(workspace)
        assert after == before  # every path, every content, and each file its own inode (one link)
        assert {links for _, links in after.values()} == {1}
        assert workspace.diff(against="many", stat=True).changes == ()


def test_a_write_through_a_restored_file_never_changes_what_the_snapshot_holds(workspace: Workspace) -> None:
    workspace.files.write("kept.txt", "as snapshotted\n")
    workspace.snapshots.create("kept")
    workspace.files.write("kept.txt", "changed once\n")
    workspace.reset(snapshot="kept")

    # Written in place, through the file the reset put there, and through a second link to it.
    wrote = workspace.exec(
        [
            "python3",
            "-c",
            "import os; fh = open('kept.txt', 'r+b'); fh.write(b'OVERWRITE'); fh.close();"
            " os.link('kept.txt', 'alias.txt'); open('alias.txt', 'ab').write(b'more\\n')",
        ]
    )
    assert wrote.exit_code == 0, wrote.stderr
    assert workspace.files.read("kept.txt").data == b"OVERWRITEotted\nmore\n"
    assert [c.path for c in workspace.diff(against="kept", stat=True).changes] == ["alias.txt", "kept.txt"]

    workspace.reset(snapshot="kept")

    assert workspace.files.read("kept.txt").data == b"as snapshotted\n"
    assert workspace.diff(against="kept", stat=True).changes == ()


def test_an_exec_reads_the_workspace_record_once_and_never_rewrites_it(
    roost: Roost, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = roost.home / "workspaces" / workspace.id / "workspace.json"
    before = record.stat()
    loads: list[str] = []
    real_load = WorkspaceStore.load

    def counting_load(store: WorkspaceStore, ws_id: str) -> WorkspaceRecord:
        loads.append(ws_id)
        return real_load(store, ws_id)

    with monkeypatch.context() as patch:
        patch.setattr(WorkspaceStore, "load", counting_load)
        results = [workspace.exec(["true"]) for _ in range(5)]

    after = record.stat()
    assert [r.exec_id for r in results] == [1, 2, 3, 4, 5]
    assert loads == [workspace.id] * 5
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)


COUNT_EXECS = textwrap.dedent(
    """
    import json, sys
    from roost import Roost
    with Roost(home=sys.argv[1], backend=sys.argv[2]) as roost:
        ws = roost.workspace(sys.argv[3])
        print(json.dumps([ws.exec(["true"]).exec_id for _ in range(int(sys.argv[4]))]))
    """
)


def test_the_exec_counter_stays_unique_and_gapless_across_processes_and_compactions(
    roost: Roost, workspace: Workspace, backend: str
) -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", COUNT_EXECS, str(roost.home), backend, workspace.id, "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mine = [workspace.exec(["true"]).exec_id for _ in range(40)]
        out, err = other.communicate(timeout=CALL_TIMEOUT)
    finally:
        if other.poll() is None:
            other.kill()
            other.communicate()
    assert other.returncode == 0, err
    theirs = json.loads(out)

    assert sorted(mine + theirs) == list(range(1, 81))
    assert mine == sorted(mine) and theirs == sorted(theirs)
    last = workspace.exec("echo last")
    assert last.exec_id == 81 and workspace.info().exec_count == 81
    logged = [entry.exec_id for entry in workspace.logs()]
    assert logged == list(range(1, 82))
    assert workspace.exec_output(81, "stdout").data == "last\n"


KILLED_DELETE = textwrap.dedent(
    """
    import os, signal, sys
    from roost import Roost
    from roost.store import trash

    def crash(self, tomb, what):  # the machine goes down right after the rename
        os.kill(os.getpid(), signal.SIGKILL)

    trash.Trash.release = crash
    with Roost(home=sys.argv[1], backend=sys.argv[2]) as roost:
        roost.workspace(sys.argv[3]).delete()
    """
)


def test_a_delete_killed_midway_never_shows_a_half_workspace_and_a_later_command_reaps_it(
    roost: Roost, workspace: Workspace, backend: str
) -> None:
    assert workspace.exec("mkdir -p src && for i in 1 2 3; do echo $i > src/f$i; done").exit_code == 0
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_DELETE, str(roost.home), backend, workspace.id],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    assert workspace.id not in [info.id for info in roost.list_workspaces()]
    with pytest.raises(RoostError) as caught:
        roost.workspace(workspace.id)
    assert caught.value.code == "workspace_not_found"
    trash = roost.home / TRASH_DIR
    [tomb] = os.listdir(trash)
    assert workspace.id not in tomb
    # As if the crash was a while ago: the remover it never started is not coming.
    stamp, _, rest = tomb.partition("-")
    os.rename(trash / tomb, trash / f"{int(stamp) - (STALE_SECONDS + 1) * 1_000_000_000}-{rest}")

    listed = subprocess.run(
        [sys.executable, "-m", "roost", "workspace", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        env={**os.environ, "ROOST_HOME": str(roost.home), "ROOST_BACKEND": backend},
    )

    assert listed.returncode == 0, listed.stderr
    assert os.listdir(trash) == []
    assert workspace.id not in listed.stdout
