"""Jailer mode's settings: what ROOST_JAILER* ask for, what is refused, and the jailer's command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from roost.backends.firecracker import jail as jail_module
from roost.backends.firecracker.jail import Jail, JailSettings, settings_from_env
from roost.errors import BackendError


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Path:
    """A `roost runtime install` layout: firecracker with its jailer beside it."""
    for name in ("firecracker", "jailer"):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return tmp_path


@pytest.fixture(autouse=True)
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(jail_module, "cgroup_version", lambda: 1)


@pytest.mark.parametrize("value", ["", "0", "off", "no", "false"])
def test_jailer_mode_is_off_unless_asked_for(runtime_dir: Path, value: str) -> None:
    assert settings_from_env({"ROOST_JAILER": value}, runtime_dir / "firecracker") is None
    assert settings_from_env({}, runtime_dir / "firecracker") is None


def test_on_finds_the_jailer_beside_firecracker_and_defaults_to_nobody_with_cgroups(runtime_dir: Path) -> None:
    settings = settings_from_env({"ROOST_JAILER": "1"}, runtime_dir / "firecracker")

    assert settings == JailSettings(str(runtime_dir / "jailer"), 65534, 65534, 1)


def test_a_path_uid_gid_and_no_cgroups_can_be_chosen(runtime_dir: Path) -> None:
    environ = {
        "ROOST_JAILER": str(runtime_dir / "jailer"),
        "ROOST_JAILER_UID": "1234",
        "ROOST_JAILER_GID": "5678",
        "ROOST_JAILER_CGROUPS": "0",
    }

    assert settings_from_env(environ, Path("/elsewhere/firecracker")) == JailSettings(
        str(runtime_dir / "jailer"), 1234, 5678, None
    )


def test_a_jailer_that_is_not_there_is_jailer_missing_with_a_hint(
    runtime_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(runtime_dir / "empty"))
    (runtime_dir / "jailer").unlink()

    for value in ("1", str(runtime_dir / "nope")):
        with pytest.raises(BackendError) as caught:
            settings_from_env({"ROOST_JAILER": value}, runtime_dir / "firecracker")
        assert caught.value.code == "jailer_missing"
        assert caught.value.hint


@pytest.mark.parametrize("uid", ["0", "-1", "nobody"])
def test_root_or_non_numeric_ids_are_refused(runtime_dir: Path, uid: str) -> None:
    with pytest.raises(BackendError) as caught:
        settings_from_env({"ROOST_JAILER": "1", "ROOST_JAILER_UID": uid}, runtime_dir / "firecracker")
    assert caught.value.code == "jailer_config_invalid"


def test_jailer_mode_needs_root(runtime_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jail_module.os, "geteuid", lambda: 1000)
    with pytest.raises(BackendError) as caught:
        settings_from_env({"ROOST_JAILER": "1"}, runtime_dir / "firecracker")
    assert caught.value.code == "jailer_needs_root"


def test_settings_survive_the_runtime_record_and_a_damaged_one_is_runtime_corrupt() -> None:
    settings = JailSettings("/opt/jailer", 1000, 1001, None)

    assert JailSettings.from_json(settings.to_json()) == settings
    assert JailSettings.from_json(None) is None
    with pytest.raises(BackendError) as caught:
        JailSettings.from_json({"jailer": "/opt/jailer", "uid": "x"})
    assert caught.value.code == "runtime_corrupt"


@pytest.mark.parametrize(
    ("version", "limits"),
    [
        (1, ["cpu.cfs_quota_us=200000", f"memory.limit_in_bytes={(512 + 256) << 20}"]),
        (2, ["cpu.max=200000 100000", f"memory.max={(512 + 256) << 20}"]),
    ],
)
def test_the_jailer_command_line_jails_into_the_workspace_dir_with_limits_from_the_plan(
    tmp_path: Path, version: int, limits: list[str]
) -> None:
    jail = Jail(tmp_path, "ws-0123456789", JailSettings("/opt/jailer", 1000, 1001, version), "firecracker")

    argv = jail.argv(Path("/opt/firecracker"), "fc.sock", vcpus=2, mem_mib=512)

    assert argv[:9] == [
        "/opt/jailer",
        "--id",
        "ws-0123456789",
        "--exec-file",
        "/opt/firecracker",
        "--uid",
        "1000",
        "--gid",
        "1001",
    ]
    assert argv[argv.index("--chroot-base-dir") + 1] == str(tmp_path)
    assert "--new-pid-ns" in argv
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "--cgroup"] == limits
    assert argv[argv.index("--cgroup-version") + 1] == str(version)
    assert argv[-5:] == ["--", "--api-sock", "/fc.sock", "--level", "Warning"]  # no API bodies (the key) in the log
    assert jail.root == tmp_path / "firecracker" / "ws-0123456789" / "root"


def test_without_cgroups_the_jailer_is_given_none(tmp_path: Path) -> None:
    jail = Jail(tmp_path, "ws-0123456789", JailSettings("/opt/jailer", 1000, 1001, None))

    argv = jail.argv(Path("/opt/firecracker"), "fc.sock", vcpus=2, mem_mib=512)

    assert not {"--cgroup", "--cgroup-version", "--parent-cgroup"} & set(argv)


def test_staging_links_the_disk_for_the_vmm_to_write_and_copies_a_kernel_from_another_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jail = Jail(tmp_path, "ws-0123456789", JailSettings("/opt/jailer", os.getuid(), os.getgid(), None))
    jail.root.mkdir(parents=True)
    disk = tmp_path / "disk.ext4"
    disk.write_bytes(b"disk")
    kernel = tmp_path / "vmlinux.src"
    kernel.write_bytes(b"kernel")

    assert jail.stage(disk, "disk.ext4", writable=True) == "/disk.ext4"
    assert os.path.samefile(jail.root / "disk.ext4", disk)

    def cross_device(source: object, dest: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(jail_module.os, "link", cross_device)
    assert jail.stage(kernel, "vmlinux") == "/vmlinux"
    assert (jail.root / "vmlinux").read_bytes() == b"kernel"
    with pytest.raises(BackendError) as caught:
        jail.stage(disk, "disk.ext4", writable=True)  # a copy would leave the workspace's disk behind
    assert caught.value.code == "jail_setup_failed"


def test_a_kernel_only_its_owner_may_read_is_copied_world_readable_never_relinked_or_chowned(tmp_path: Path) -> None:
    jail = Jail(tmp_path, "ws-0123456789", JailSettings("/opt/jailer", 65534, 65534, None))
    jail.root.mkdir(parents=True)
    kernel = tmp_path / "vmlinux.src"
    kernel.write_bytes(b"kernel")
    kernel.chmod(0o600)
    before = kernel.stat()

    assert jail.stage(kernel, "vmlinux") == "/vmlinux"

    inside = (jail.root / "vmlinux").stat()
    assert inside.st_ino != before.st_ino
    assert stat.S_IMODE(inside.st_mode) == 0o444
    after = kernel.stat()
    assert (after.st_uid, stat.S_IMODE(after.st_mode)) == (before.st_uid, 0o600)


def test_log_lines_surfaced_in_errors_never_carry_the_identity_key() -> None:
    from roost.backends.firecracker.vm import without_key

    line = 'boot-source with body "{\\"boot_args\\": \\"console=ttyS0 roost.workspace=ws-1 roost.key=00ff9a\\"}"'
    assert without_key(line) == line.replace("roost.key=00ff9a", "roost.key=(hidden)")
