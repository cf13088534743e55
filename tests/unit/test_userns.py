"""What a normal user needs for user namespaces over subordinate ids: each check says what is missing and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roost import userns


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake /etc/subuid, /etc/subgid and /proc/sys under `tmp_path`, empty to start with."""
    (tmp_path / "subuid").write_text("")
    (tmp_path / "subgid").write_text("")
    (tmp_path / "sys" / "user").mkdir(parents=True)
    (tmp_path / "sys" / "kernel").mkdir()
    monkeypatch.setattr(userns, "SUBUID", tmp_path / "subuid")
    monkeypatch.setattr(userns, "SUBGID", tmp_path / "subgid")
    monkeypatch.setattr(userns, "PROC_SYS", tmp_path / "sys")
    return tmp_path


def _me() -> str:
    return userns.user_names(os.geteuid())[0]


def test_a_user_without_subordinate_ids_is_told_a_free_range_to_add(host: Path) -> None:
    (host / "subuid").write_text("alice:100000:65536\nbob:165536:65536\n")
    (host / "subgid").write_text("alice:100000:65536\n")

    check = userns.subordinate_ids(os.geteuid())

    assert not check.ok
    assert f"{_me()} has no range of 65535 ids" in check.detail
    # The first block no line uses, in both files.
    assert check.fix == f"usermod --add-subuids 231072-296607 --add-subgids 231072-296607 {_me()} (as root)"


def test_only_the_missing_file_is_named_in_the_fix(host: Path) -> None:
    (host / "subuid").write_text(f"{_me()}:200000:65536\n")

    check = userns.subordinate_ids(os.geteuid())

    assert not check.ok
    assert str(host / "subgid") in check.detail and str(host / "subuid") not in check.detail
    assert check.fix is not None and "--add-subgids" in check.fix and "--add-subuids" not in check.fix


def test_a_range_given_by_uid_number_counts_and_a_too_small_one_does_not(host: Path) -> None:
    uid = os.geteuid()
    (host / "subuid").write_text(f"{uid}:300000:65536\n")
    (host / "subgid").write_text(f"{_me()}:300000:1000\n")

    assert not userns.subordinate_ids(uid).ok

    (host / "subgid").write_text(f"{_me()}:300000:65536\n")
    check = userns.subordinate_ids(uid)
    assert check.ok and "300000-365535" in check.detail and check.fix is None


def test_malformed_lines_are_skipped(host: Path) -> None:
    (host / "subuid").write_text(f"garbage\n{_me()}:x:65536\n{_me()}:400000:65536\n")
    (host / "subgid").write_text(f"{_me()}:400000:65536\n")

    assert userns.subordinate_range(host / "subuid", (_me(),), 65535) == (400000, 65536)
    assert userns.subordinate_ids(os.geteuid()).ok


@pytest.mark.parametrize(
    ("knob", "value", "named"),
    [
        ("user/max_user_namespaces", "0", "user.max_user_namespaces"),
        ("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone"),
        ("kernel/apparmor_restrict_unprivileged_userns", "1", "kernel.apparmor_restrict_unprivileged_userns"),
    ],
)
def test_each_kernel_knob_that_forbids_user_namespaces_is_named_with_its_sysctl(
    host: Path, knob: str, value: str, named: str
) -> None:
    (host / "sys" / "user" / "max_user_namespaces").write_text("1000\n")
    (host / "sys" / knob).write_text(f"{value}\n")

    check = userns.user_namespaces()

    assert not check.ok
    assert named in check.detail
    assert check.fix is not None and check.fix.startswith("sysctl -w ")


def test_user_namespaces_are_ok_when_no_knob_forbids_them(host: Path) -> None:
    (host / "sys" / "user" / "max_user_namespaces").write_text("15000\n")
    (host / "sys" / "kernel" / "unprivileged_userns_clone").write_text("1\n")

    check = userns.user_namespaces()

    assert check.ok and "15000" in check.detail


def test_missing_id_map_helpers_are_named_with_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    check = userns.id_map_helpers()

    assert not check.ok
    assert check.detail == "newuidmap and newgidmap not installed"
    assert check.fix == "apt-get install uidmap (as root)"
