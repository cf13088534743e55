"""Secrets given to one process by the agent: env values in its env only, files 0400 on a tmpfs, removed after."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from roost.agent.secret_files import ProcessSecrets
from roost.protocol import OpError
from roost.protocol.ops.secrets import SecretGrant

VALUE = b"tok-\xff-binary"


def test_env_grants_add_variables_without_touching_the_given_environment() -> None:
    base = {"PATH": "/bin"}
    granted = ProcessSecrets([SecretGrant.of("TOKEN", "env", "API_KEY", b"abc")])
    assert granted.merged(base) == {"PATH": "/bin", "API_KEY": "abc"} and base == {"PATH": "/bin"}
    assert "API_KEY" not in os.environ


def test_file_grants_are_owner_read_only_files_in_a_private_directory_removed_after(tmp_path: Path) -> None:
    granted = ProcessSecrets([SecretGrant.of("TOKEN", "file", "ROOST_SECRET_FILE_TOKEN", VALUE)], root=str(tmp_path))
    path = Path(granted.env["ROOST_SECRET_FILE_TOKEN"])
    assert path.read_bytes() == VALUE
    assert stat.S_IMODE(path.stat().st_mode) == 0o400 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    granted.remove()
    granted.remove()
    assert not path.parent.exists()


def test_a_grant_never_shows_its_value_in_a_repr_or_an_error() -> None:
    grant = SecretGrant.of("TOKEN", "env", "API_KEY", b"hunter2-value")
    assert "hunter2" not in repr(grant) and "aHVudGVyMi" not in repr(grant)
    with pytest.raises(OpError) as caught:
        SecretGrant.of("TOKEN", "env", "API_KEY", b"nul\0hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(OpError):
        SecretGrant.of("TOKEN", "env", "1BAD", b"x")


def test_the_default_root_is_a_tmpfs() -> None:
    from roost.agent.secret_files import SECRET_FILES_ROOT

    with open("/proc/self/mounts") as mounts:
        kinds = {line.split()[1]: line.split()[2] for line in mounts}
    assert kinds.get(SECRET_FILES_ROOT) == "tmpfs"


def test_a_file_at_a_named_path_must_be_new_on_a_tmpfs_and_outside_the_workspace(tmp_path: Path) -> None:
    from roost.agent.secret_files import filesystem_of

    wanted = f"/dev/shm/roost-test-{os.getpid()}-token"
    granted = ProcessSecrets([SecretGrant.of("TOKEN", "file", "ROOST_SECRET_FILE_TOKEN", VALUE, wanted)])
    try:
        assert granted.env["ROOST_SECRET_FILE_TOKEN"] == wanted and Path(wanted).read_bytes() == VALUE
        with pytest.raises(OpError):  # never over a file that is there
            ProcessSecrets([SecretGrant.of("TOKEN", "file", "V", VALUE, wanted)])
    finally:
        granted.remove()
    assert not Path(wanted).exists()
    if filesystem_of(str(tmp_path)) != "tmpfs":
        with pytest.raises(OpError) as not_tmpfs:
            ProcessSecrets([SecretGrant.of("TOKEN", "file", "V", VALUE, str(tmp_path / "token"))])
        assert "tmpfs" in not_tmpfs.value.message
    with pytest.raises(OpError) as inside:
        ProcessSecrets([SecretGrant.of("TOKEN", "file", "V", VALUE, "/dev/shm/ws/token")], workspace_root="/dev/shm/ws")
    assert "workspace" in inside.value.message and not Path("/dev/shm/ws/token").exists()


def test_a_named_paths_directory_swapped_for_a_link_after_its_check_is_refused_and_nothing_goes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import roost.agent.secret_files as secret_files

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    place = Path(f"/dev/shm/roost-test-{os.getpid()}-swap")
    place.mkdir()
    moved = place.with_name(place.name + "-moved")
    real_filesystem_of = secret_files.filesystem_of

    def swapping(path: str, mounts: str = "/proc/self/mounts") -> str | None:
        # The workspace's move right after the first check: the directory goes, a link into the
        # workspace takes its name.
        if path == str(place) and not place.is_symlink():
            place.rename(moved)
            place.symlink_to(workspace)
        return "tmpfs" if path in (str(place), str(moved)) else real_filesystem_of(path, mounts)

    monkeypatch.setattr(secret_files, "filesystem_of", swapping)
    try:
        with pytest.raises(OpError) as refused:
            ProcessSecrets(
                [SecretGrant.of("TOKEN", "file", "V", VALUE, str(place / "token"))], workspace_root=str(workspace)
            )
        assert "workspace" in refused.value.message
        assert list(workspace.iterdir()) == []  # nothing was written through the link
    finally:
        if place.is_symlink():
            place.unlink()
        for leftover in (place, moved):
            if leftover.is_dir():
                leftover.rmdir()


def test_the_file_system_of_a_path_is_its_longest_mount_point(tmp_path: Path) -> None:
    from roost.agent.secret_files import filesystem_of

    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\nnone /run/user/0 fuse rw 0 0\n")
    assert filesystem_of("/run/token", str(mounts)) == "tmpfs"
    assert filesystem_of("/run/user/0/x", str(mounts)) == "fuse"
    assert filesystem_of("/running", str(mounts)) == "ext4"
