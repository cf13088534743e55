"""A full disk under `$ROOST_HOME` (ENOSPC on a small tmpfs): clear errors, finished commands keep
their results, and delete always frees the space.

Harmless when it fails: the tmpfs is mounted under the test's own tmp dir and unmounted at
teardown (skipped where mounting is not permitted); only files on it are written.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import RoostCli
from helpers import pids_with_env, processes_mentioning
from roost import Roost, RoostError, Workspace
from roost.backends.processes import WORKSPACE_MARKER
from roost.errors import StorageError
from roost.store.records import WorkspaceStore
from roost.workspace.engine import read_boot

TMPFS_BYTES = 16 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.fixture
def roost_home(tmp_path: Path, shared_images: Path) -> Iterator[Path]:
    """Here `$ROOST_HOME` is its own 16 MiB tmpfs (images live elsewhere, as usual)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    home = tmp_path / "small-home"
    home.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700", "roost-enospc-test", str(home)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        (home / "images").symlink_to(shared_images, target_is_directory=True)
        yield home
    finally:
        if subprocess.run(["umount", str(home)], capture_output=True, timeout=10).returncode != 0:
            subprocess.run(["umount", "--lazy", str(home)], capture_output=True, timeout=10)


def _fill(home: Path) -> None:
    """Write one file until the tmpfs says ENOSPC (a bounded loop: it holds 16 MiB)."""
    fd = os.open(home / "filler", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    block = b"\xa5" * CHUNK
    try:
        for _ in range(TMPFS_BYTES // CHUNK + 2):
            try:
                os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return
        pytest.fail("the tmpfs never filled up")
    finally:
        os.close(fd)


def _free(home: Path) -> int:
    stats = os.statvfs(home)
    return stats.f_bavail * stats.f_frsize


def _gone(home: Path, ws: Workspace) -> bool:
    directory = home / "workspaces" / ws.id
    return (
        not directory.exists()
        and not pids_with_env(WORKSPACE_MARKER, ws.id)
        and not processes_mentioning(str(directory))
    )


def test_exec_on_a_full_disk_returns_its_result_and_says_the_history_was_not_saved(roost: Roost, cli: RoostCli) -> None:
    ws = roost.create_workspace("debian:12")
    _fill(roost.home)

    result = ws.exec("echo still here")
    shown = cli.json("workspace", "exec", ws.id, "--", "echo", "from the cli")

    assert (result.exit_code, result.stdout) == (0, "still here\n")
    assert result.exec_id is None
    assert result.history_error is not None and result.history_error.startswith("disk_full")
    assert (shown["exit_code"], shown["stdout"], shown["exec_id"]) == (0, "from the cli\n", None)
    assert shown["history_error"].startswith("disk_full")


def test_writes_on_a_full_disk_fail_with_disk_full_and_a_hint_never_internal(roost: Roost, cli: RoostCli) -> None:
    ws = roost.create_workspace("debian:12")
    _fill(roost.home)

    with pytest.raises(StorageError) as in_workspace:  # the agent hits ENOSPC in /workspace
        ws.files.write("notes.txt", "x" * 65536)
    with pytest.raises(StorageError) as in_state:  # the host hits ENOSPC writing the record
        ws.update(labels={"full": "yes"})
    cli_error = cli.error(
        cli("workspace", "file", "write", ws.id, "notes.txt", "--content", "x", "--json"), 5, "disk_full"
    )

    for caught in (in_workspace.value, in_state.value):
        assert caught.code == "disk_full"
        assert caught.hint
    assert "internal" not in cli_error["message"]


def test_delete_and_delete_force_free_a_full_disk(roost: Roost, cli: RoostCli) -> None:
    first = roost.create_workspace("debian:12")
    second = roost.create_workspace("debian:12")
    for ws in (first, second):
        assert ws.exec("head -c 1048576 /dev/zero > big").ok
    _fill(roost.home)
    full = _free(roost.home)

    first.delete()
    cli("workspace", "delete", second.id, "--force", check_rc=0)

    assert _gone(roost.home, first) and _gone(roost.home, second)
    assert _free(roost.home) >= full + 2 * 1048576


def test_create_on_a_full_disk_fails_with_disk_full_and_leaves_nothing(roost: Roost) -> None:
    _fill(roost.home)

    with pytest.raises(RoostError) as caught:
        roost.create_workspace("debian:12")

    assert caught.value.code == "disk_full"
    assert list((roost.home / "workspaces").iterdir()) == []
    assert not processes_mentioning(str(roost.home / "workspaces"))


def test_delete_reports_files_it_could_not_remove_instead_of_hiding_them(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    store = WorkspaceStore(tmp_path / "home", read_boot)
    store.ensure()
    mount_point = store.create_dir("ws-0123456789") / "busy"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "roost-busy-test", str(mount_point)], timeout=10
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(StorageError) as caught:  # a mount point cannot be removed while mounted
            store.remove("ws-0123456789")
        assert caught.value.code == "delete_incomplete"
        assert "busy" in caught.value.message
        assert "delete(force=True)" in caught.value.hint
    finally:
        subprocess.run(["umount", str(mount_point)], timeout=10)
    store.remove("ws-0123456789")
    assert store.ids() == []
