"""The on-disk store: atomic writes, records, locks across processes, and the exec history."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from roost.backends.host_agent import HostAgentBoot
from roost.errors import ConflictError, NotFound, RoostError, StorageError, WorkspaceError
from roost.models import ExecRecord
from roost.store.atomic import write_atomic
from roost.store.history import COMPACT_EVERY, MAX_ENTRIES, ExecHistory
from roost.store.locks import file_lock
from roost.store.records import SCHEMA_VERSION, WorkspaceRecord, WorkspaceStore, utc_now
from roost.workspace.engine import read_boot

PROCESS_TIMEOUT = 30.0


def _record(ws_id: str, **changes: object) -> WorkspaceRecord:
    now = utc_now()
    base = WorkspaceRecord(id=ws_id, env="debian:12", backend="mock", state="running", created_at=now, updated_at=now)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> WorkspaceStore:
    created = WorkspaceStore(tmp_path / "home", read_boot)
    created.ensure()
    return created


def _add(store: WorkspaceStore, ws_id: str, **changes: object) -> WorkspaceRecord:
    record = _record(ws_id, **changes)
    store.create_dir(ws_id)
    store.save(record)
    return record


# -- atomic writes -----------------------------------------------------------------


def test_atomic_write_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_atomic(target, b"first")
    write_atomic(target, b"second", mode=0o640)
    assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["record.json"]


def test_atomic_write_that_fails_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["record.json"]


# -- records -------------------------------------------------------------------------


def test_record_round_trips_through_json_and_the_store(store: WorkspaceStore) -> None:
    record = _record(
        "ws-0123456789",
        name="alpha",
        labels={"team": "core"},
        ttl_seconds=60,
        expires_at=utc_now(),
        resources={"vcpus": 2},
        boot=HostAgentBoot("ws-0123456789", 1),
        exec_count=3,
    )
    assert WorkspaceRecord.from_json(record.to_json(), "here", read_boot) == record
    store.create_dir(record.id)
    store.save(record)
    assert store.load(record.id) == record
    assert (store.dir(record.id) / "workspace.json").stat().st_mode & 0o777 == 0o600


def test_a_store_sees_a_record_another_store_rewrote_since_it_last_read_it(store: WorkspaceStore) -> None:
    record = _add(store, "ws-0123456789", labels={"round": "1"})
    assert store.load(record.id).labels == {"round": "1"}
    other = WorkspaceStore(store.home, read_boot)  # another process, as a later CLI call

    with other.lock(record.id):
        other.save(dataclasses.replace(record, labels={"round": "2"}))

    assert store.load(record.id).labels == {"round": "2"}
    assert store.load(record.id) is store.load(record.id)  # unchanged bytes are not parsed again


def test_record_ignores_fields_it_does_not_know(store: WorkspaceStore) -> None:
    record = _add(store, "ws-0123456789")
    path = store.dir(record.id) / "workspace.json"
    data = json.loads(path.read_bytes())
    data["from_the_future"] = True
    path.write_text(json.dumps(data))
    assert store.load(record.id) == record


def _corruptions() -> list[tuple[str, bytes]]:
    good = json.loads(_record("ws-0123456789").to_json())
    missing = {k: v for k, v in good.items() if k != "created_at"}
    return [
        ("garbage", b"\x00\xffnot json at all"),
        ("truncated", _record("ws-0123456789").to_json()[:40]),
        ("empty", b""),
        ("not an object", b"[1, 2, 3]"),
        ("future schema", json.dumps({**good, "schema_version": SCHEMA_VERSION + 1}).encode()),
        ("no schema", json.dumps({k: v for k, v in good.items() if k != "schema_version"}).encode()),
        ("missing field", json.dumps(missing).encode()),
        ("wrong type", json.dumps({**good, "env": 12}).encode()),
        ("unknown state", json.dumps({**good, "state": "dancing"}).encode()),
        ("labels not an object", json.dumps({**good, "labels": ["a"]}).encode()),
    ]


@pytest.mark.parametrize(("what", "raw"), _corruptions(), ids=[c[0] for c in _corruptions()])
def test_corrupt_record_is_workspace_corrupt_with_a_force_hint(store: WorkspaceStore, what: str, raw: bytes) -> None:
    store.create_dir("ws-0123456789")
    (store.dir("ws-0123456789") / "workspace.json").write_bytes(raw)
    with pytest.raises(WorkspaceError) as info:
        store.load("ws-0123456789")
    assert info.value.code == "workspace_corrupt"
    assert "delete(force=True)" in info.value.hint
    assert "ws-0123456789" in info.value.hint


def test_directory_without_a_record_is_workspace_corrupt(store: WorkspaceStore) -> None:
    store.create_dir("ws-0123456789")
    with pytest.raises(WorkspaceError) as info:
        store.load("ws-0123456789")
    assert info.value.code == "workspace_corrupt"
    assert "delete(force=True)" in info.value.hint


def test_listing_yields_corrupt_records_as_errors_instead_of_raising(store: WorkspaceStore) -> None:
    good = _add(store, "ws-aaaaaaaaaa")
    store.create_dir("ws-bbbbbbbbbb")
    (store.dir("ws-bbbbbbbbbb") / "workspace.json").write_bytes(b"{")
    (store.root / "not-a-workspace").mkdir()
    listed = list(store.records())
    assert listed[0] == good
    assert isinstance(listed[1], WorkspaceError) and listed[1].code == "workspace_corrupt"
    assert len(listed) == 2


def test_missing_workspace_is_workspace_not_found(store: WorkspaceStore) -> None:
    with pytest.raises(NotFound) as info:
        store.load("ws-0123456789")
    assert info.value.code == "workspace_not_found"


# -- resolving references ------------------------------------------------------------


def test_resolve_by_id_prefix_and_name(store: WorkspaceStore) -> None:
    _add(store, "ws-abc0000001", name="alpha")
    _add(store, "ws-abc0000002")
    _add(store, "ws-def0000003", name="beta")
    assert store.resolve("ws-abc0000002") == "ws-abc0000002"
    assert store.resolve("ws-abc0000001") == "ws-abc0000001"
    assert store.resolve("ws-de") == "ws-def0000003"
    assert store.resolve("alpha") == "ws-abc0000001"
    assert store.resolve("beta") == "ws-def0000003"


def test_ambiguous_prefix_is_workspace_ambiguous(store: WorkspaceStore) -> None:
    _add(store, "ws-abc0000001")
    _add(store, "ws-abc0000002")
    for ref in ("ws-abc", "ws-"):
        with pytest.raises(ConflictError) as info:
            store.resolve(ref)
        assert info.value.code == "workspace_ambiguous"
        assert "ws-abc0000001" in info.value.message and "ws-abc0000002" in info.value.message


def test_unknown_reference_is_workspace_not_found(store: WorkspaceStore) -> None:
    _add(store, "ws-abc0000001", name="alpha")
    for ref in ("zzz", "ws-ffffffffff", "alph"):
        with pytest.raises(NotFound) as info:
            store.resolve(ref)
        assert info.value.code == "workspace_not_found"


def test_a_reference_without_ws_prefix_is_only_ever_a_name(store: WorkspaceStore) -> None:
    _add(store, "ws-abc0000001", name="abc")
    _add(store, "ws-abc0000002")
    _add(store, "ws-def0000003")
    store.create_dir("ws-abc0000003")  # no record: skipped while matching names
    assert store.resolve("abc") == "ws-abc0000001"
    for ref in ("def", "abc0000002"):  # the hex of an id is not a reference to it
        with pytest.raises(NotFound):
            store.resolve(ref)


# -- the home directory --------------------------------------------------------------


def test_home_is_created_private(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    WorkspaceStore(home, read_boot).ensure()
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "workspaces").stat().st_mode & 0o777 == 0o700


def test_home_loosened_by_someone_is_tightened_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = WorkspaceStore(home, read_boot)
    store.ensure()
    os.chmod(home, 0o755)
    os.chmod(home / "workspaces", 0o777)
    with store.global_lock():
        pass
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "workspaces").stat().st_mode & 0o777 == 0o700


# -- locking across processes ----------------------------------------------------------

_UPDATER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from roost.store.records import WorkspaceStore
    from roost.workspace.engine import read_boot

    home, ws_id, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = WorkspaceStore(Path(home), read_boot)
    print("ready", flush=True)
    sys.stdin.readline()  # everyone starts together
    for i in range(count):
        key = f"w{worker}-{i}"
        store.update(ws_id, lambda r, key=key: r.replace(labels={**r.labels, key: "x"}))
    print("done", flush=True)
    """
)


def test_an_update_that_changes_nothing_writes_nothing(store: WorkspaceStore) -> None:
    record = _add(store, "ws-0123456789")
    before = (store.dir(record.id) / "workspace.json").stat()

    assert store.update(record.id, lambda r: r) == record

    after = (store.dir(record.id) / "workspace.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_concurrent_updates_from_many_processes_lose_nothing(store: WorkspaceStore) -> None:
    _add(store, "ws-0123456789")
    workers, per_worker = 4, 8
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _UPDATER, str(store.home), "ws-0123456789", str(w), str(per_worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(PROCESS_TIMEOUT) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    labels = store.load("ws-0123456789").labels
    assert sorted(labels) == sorted(f"w{w}-{i}" for w in range(workers) for i in range(per_worker))
    assert not [p for p in os.listdir(store.dir("ws-0123456789")) if p.endswith(".tmp")]


_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from roost.store.locks import file_lock

    with file_lock(Path(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


def test_lock_held_by_another_process_times_out_as_workspace_busy(tmp_path: Path) -> None:
    lock_path = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConflictError) as info, file_lock(lock_path, timeout=0.05):
            pass
        assert info.value.code == "workspace_busy"
        assert info.value.hint
    finally:
        holder.stdin.close()
        holder.wait(PROCESS_TIMEOUT)
        holder.stdout.close()
    with file_lock(lock_path, timeout=PROCESS_TIMEOUT):  # released with its holder
        pass


_OWNER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from roost.store.records import WorkspaceStore
    from roost.workspace.engine import read_boot

    owner = WorkspaceStore(Path(sys.argv[1]), read_boot).claim_owner(sys.argv[2])
    print("owned", flush=True)
    sys.stdin.readline()
    """
)


def test_a_workspace_owner_counts_as_alive_until_its_process_is_killed(store: WorkspaceStore) -> None:
    _add(store, "ws-0123456789")
    assert not store.owner_alive("ws-0123456789")
    holder = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(store.home), "ws-0123456789"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "owned"
        assert store.owner_alive("ws-0123456789")
        with pytest.raises(ConflictError) as info:
            store.claim_owner("ws-0123456789")
        assert info.value.code == "workspace_busy"
    finally:
        holder.kill()  # as kill -9 would: no cleanup runs in the holder
        holder.wait(PROCESS_TIMEOUT)
        holder.stdin.close()
        holder.stdout.close()

    assert not store.owner_alive("ws-0123456789")
    with store.claim_owner("ws-0123456789"):
        assert store.owner_alive("ws-0123456789")  # its own process sees it too
    assert not store.owner_alive("ws-0123456789")


def test_lock_on_a_missing_workspace_is_workspace_not_found(store: WorkspaceStore) -> None:
    with pytest.raises(NotFound) as info, store.lock("ws-0123456789"):
        pass
    assert info.value.code == "workspace_not_found"


# -- exec history ----------------------------------------------------------------------


def _exec_record(exec_id: int, **changes: object) -> ExecRecord:
    base = ExecRecord(
        exec_id=exec_id,
        started_at=utc_now(),
        command=f"echo {exec_id}",
        cwd="/workspace",
        exit_code=0,
        signal=None,
        timed_out=False,
        duration_ms=1.0,
        stdout_bytes=0,
        stderr_bytes=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_history_lists_and_serves_only_the_newest_entries_and_compaction_deletes_old_outputs(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    total = MAX_ENTRIES + 5
    for exec_id in range(1, total + 1):
        history.append(_exec_record(exec_id), f"out{exec_id}".encode(), f"err{exec_id}".encode())
    entries = history.entries()
    assert len(entries) == MAX_ENTRIES == 100
    assert [e.exec_id for e in entries] == list(range(6, total + 1))
    assert history.entries(limit=3) == entries[-3:]
    with pytest.raises(NotFound) as info:
        history.read_output(5, "stdout")
    assert info.value.code == "exec_not_found"
    assert history.read_output(6, "stderr").data == "err6"

    for exec_id in range(total + 1, MAX_ENTRIES + COMPACT_EVERY + 1):  # up to the next compaction
        history.append(_exec_record(exec_id), f"out{exec_id}".encode(), b"")
    outputs = sorted(os.listdir(tmp_path / "outputs"))
    first_kept = COMPACT_EVERY + 1
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == MAX_ENTRIES
    assert f"{first_kept - 1}.stdout" not in outputs and f"{first_kept}.stdout" in outputs
    assert len([o for o in outputs if o.endswith(".stdout")]) == MAX_ENTRIES
    assert history.last_id() == MAX_ENTRIES + COMPACT_EVERY


def test_the_exec_counter_is_the_last_line_of_the_history(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    assert history.last_id() == 0
    for exec_id in (1, 2, 3):
        history.append(_exec_record(exec_id), b"", b"")

    assert ExecHistory(tmp_path).last_id() == 3  # another process, as a later CLI call


def test_the_exec_counter_is_found_behind_a_last_line_longer_than_the_short_tail(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    history.append(_exec_record(1), b"", b"")
    history.append(dataclasses.replace(_exec_record(2), command="x" * 10_000), b"", b"")

    assert ExecHistory(tmp_path).last_id() == 2


def test_an_append_after_a_torn_line_starts_a_line_of_its_own(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    history.append(_exec_record(1), b"", b"")
    with open(tmp_path / "history.jsonl", "a") as fh:
        fh.write('{"exec_id": 2, "comm')  # a crash mid-append
    assert history.last_id() == 1

    history.append(_exec_record(2), b"", b"")

    assert [e.exec_id for e in history.entries()] == [1, 2]
    assert history.last_id() == 2


def test_an_exec_that_printed_nothing_reads_back_empty_without_an_output_file(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    history.append(_exec_record(1), b"", b"only stderr")

    empty = history.read_output(1, "stdout")

    assert (empty.data, empty.size, empty.eof) == ("", 0, True)
    assert sorted(os.listdir(tmp_path / "outputs")) == ["1.stderr"]
    with pytest.raises(NotFound):
        history.read_output(2, "stdout")


def test_history_round_trips_exec_records(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    record = _exec_record(1, exit_code=None, signal="SIGKILL", timed_out=True, error="agent_disconnected")
    history.append(record, b"", b"")
    assert history.entries() == [record]


def test_history_skips_a_torn_line(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    history.append(_exec_record(1), b"", b"")
    with open(tmp_path / "history.jsonl", "a") as fh:
        fh.write('{"exec_id": 2, "comm')
    assert [e.exec_id for e in history.entries()] == [1]


def test_history_of_a_fresh_workspace_is_empty(tmp_path: Path) -> None:
    assert ExecHistory(tmp_path).entries() == []


def test_read_output_returns_windows_of_a_saved_stream(tmp_path: Path) -> None:
    history = ExecHistory(tmp_path)
    history.append(_exec_record(1), b"hello world", b"oops")
    first = history.read_output(1, "stdout", offset=0, max_bytes=5)
    last = history.read_output(1, "stdout", offset=6, max_bytes=100)
    past = history.read_output(1, "stdout", offset=50)
    assert (first.data, first.length, first.size, first.eof) == ("hello", 5, 11, False)
    assert (last.data, last.offset, last.eof) == ("world", 6, True)
    assert (past.data, past.length, past.eof) == ("", 0, True)
    assert history.read_output(1, "stderr").data == "oops"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"exec_id": 1, "stream": "stdlog"}, "invalid_argument"),
        ({"exec_id": 1, "stream": "stdout", "offset": -1}, "invalid_argument"),
        ({"exec_id": 1, "stream": "stdout", "max_bytes": 8 * 1024 * 1024 + 1}, "read_too_large"),
        ({"exec_id": 99, "stream": "stdout"}, "exec_not_found"),
    ],
)
def test_read_output_refuses_bad_windows_and_unknown_execs(tmp_path: Path, args: dict[str, object], code: str) -> None:
    history = ExecHistory(tmp_path)
    history.append(_exec_record(1), b"x", b"")
    with pytest.raises(RoostError) as info:
        history.read_output(**args)  # type: ignore[arg-type]
    assert info.value.code == code


def test_a_home_that_cannot_be_a_directory_is_home_unusable_for_reads_and_writes(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = WorkspaceStore(blocker / "roost", read_boot)
    for attempt in (store.ensure, store.ids):
        with pytest.raises(StorageError) as caught:
            attempt()
        assert caught.value.code == "home_unusable"
        assert "ROOST_HOME" in (caught.value.hint or "")
