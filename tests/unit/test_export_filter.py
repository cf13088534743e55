"""The host-side export rules, fed archives a lying agent could send."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.workspace.export_filter import LoneEntryMismatch, plan_export, safe_mode, write_tar, write_tree


def member(
    name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = "", data: bytes = b""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.uid = info.gid = 4242
    info.mtime = 1_700_000_000
    return info, data


def archive(*members: tuple[tarfile.TarInfo, bytes], pax: dict[str, str] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if pax:
                info.pax_headers = dict(pax)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buf.seek(0)
    return buf


def skipped(buf: io.BytesIO, *, lone: bool = False) -> dict[str, str]:
    return {s.path: s.reason for s in plan_export(buf, lone=lone).skipped}


def kept_names(buf: io.BytesIO, *, lone: bool = False) -> list[str]:
    return ["/".join(k.parts) for k in plan_export(buf, lone=lone).kept.values()]


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    root = tmp_path / "tree"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield root, fd
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("mode", "directory", "expected"),
    [
        (0o4755, False, 0o755),
        (0o2755, False, 0o755),
        (0o1777, True, 0o755),
        (0o666, False, 0o644),
        (0o777, False, 0o755),
        (0o000, True, 0o700),
        (0o640, False, 0o640),
    ],
    ids=lambda value: oct(value) if isinstance(value, int) and not isinstance(value, bool) else str(value),
)
def test_safe_mode_drops_setuid_setgid_sticky_and_group_other_write(mode: int, directory: bool, expected: int) -> None:
    assert safe_mode(mode, directory=directory) == expected


def test_absolute_symlinks_are_skipped_and_listed() -> None:
    buf = archive(member("a", tarfile.SYMTYPE, link="/etc/shadow"), member("f", data=b"x"))
    assert skipped(buf) == {"a": "absolute_symlink"}
    buf.seek(0)
    assert kept_names(buf) == ["f"]


@pytest.mark.parametrize("target", ["../x", "../../etc/passwd", "sub/../../x", "./../x", "sub/../.."])
def test_relative_symlinks_that_climb_out_of_the_tree_are_skipped(target: str) -> None:
    buf = archive(member("sub", tarfile.DIRTYPE, mode=0o755), member("link", tarfile.SYMTYPE, link=target))
    assert skipped(buf) == {"link": "symlink_escapes"}


def test_a_symlink_resolved_through_another_link_that_leaves_the_tree_is_skipped() -> None:
    buf = archive(
        member("up", tarfile.SYMTYPE, link=".."),
        member("abs", tarfile.SYMTYPE, link="/etc"),
        member("via-up", tarfile.SYMTYPE, link="up/secret"),
        member("via-abs", tarfile.SYMTYPE, link="abs/passwd"),
        member("loop-a", tarfile.SYMTYPE, link="loop-b"),
        member("loop-b", tarfile.SYMTYPE, link="loop-a"),
    )
    assert skipped(buf) == {
        "up": "symlink_escapes",
        "abs": "absolute_symlink",
        "via-up": "symlink_escapes",
        "via-abs": "symlink_escapes",
        "loop-a": "symlink_escapes",
        "loop-b": "symlink_escapes",
    }


def test_relative_symlinks_that_stay_inside_are_kept_dangling_ones_too() -> None:
    buf = archive(
        member("sub", tarfile.DIRTYPE),
        member("sub/file", data=b"x"),
        member("sub/sibling", tarfile.SYMTYPE, link="file"),
        member("sub/up-and-in", tarfile.SYMTYPE, link="../sub/file"),
        member("top", tarfile.SYMTYPE, link="sub"),
        member("dangling", tarfile.SYMTYPE, link="not/there"),
        member("self", tarfile.SYMTYPE, link="."),
    )
    assert skipped(buf) == {}


def test_a_lone_symlink_has_nothing_inside_the_export_to_point_at() -> None:
    assert skipped(archive(member("link", tarfile.SYMTYPE, link="sibling")), lone=True) == {"link": "symlink_escapes"}


def test_devices_and_fifos_never_cross() -> None:
    buf = archive(
        member("null", tarfile.CHRTYPE),
        member("disk", tarfile.BLKTYPE),
        member("pipe", tarfile.FIFOTYPE),
        member("ok", data=b"fine"),
    )
    assert skipped(buf) == {"null": "special_file", "disk": "special_file", "pipe": "special_file"}


def test_hard_links_cross_only_to_a_file_exported_before_them() -> None:
    buf = archive(
        member("early", tarfile.LNKTYPE, link="file"),
        member("file", data=b"x"),
        member("twin", tarfile.LNKTYPE, link="file"),
        member("out", tarfile.LNKTYPE, link="../../etc/shadow"),
        member("abs", tarfile.LNKTYPE, link="/etc/shadow"),
        member("dir", tarfile.DIRTYPE),
        member("to-dir", tarfile.LNKTYPE, link="dir"),
    )
    assert skipped(buf) == {
        "early": "hardlink_outside",
        "out": "hardlink_outside",
        "abs": "hardlink_outside",
        "to-dir": "hardlink_outside",
    }


def test_unsafe_names_duplicates_and_entries_below_links_or_files_are_skipped() -> None:
    buf = archive(
        member("/etc/cron.d/evil", data=b"x"),
        member("../evil", data=b"x"),
        member("a/../../evil", data=b"x"),
        member("link", tarfile.SYMTYPE, link="sub"),
        member("link/through", data=b"x"),
        member("file", data=b"x"),
        member("file/below", data=b"x"),
        member("file", data=b"again"),
        member("dev", tarfile.CHRTYPE),
        member("dev/below", data=b"x"),
    )
    assert skipped(buf) == {
        "/etc/cron.d/evil": "unsafe_name",
        "../evil": "unsafe_name",
        "a/../../evil": "unsafe_name",
        "link/through": "parent_not_directory",
        "file/below": "parent_not_directory",
        "file": "duplicate",
        "dev": "special_file",
        "dev/below": "parent_skipped",
    }


def test_names_that_are_not_utf8_are_listed_as_their_bytes_and_quoted_in_json() -> None:
    name = os.fsdecode(b"bad-\xff-name")
    plan = plan_export(archive(member(name, tarfile.FIFOTYPE)), lone=False)
    (entry,) = plan.skipped
    assert (os.fsencode(entry.path), entry.reason) == (b"bad-\xff-name", "special_file")
    assert entry.to_dict()["path"] == '"bad-\\377-name"'
    json.dumps(entry.to_dict())  # nothing in it JSON cannot carry


def test_the_listing_is_bounded_but_the_count_is_not() -> None:
    buf = archive(*(member(f"p{i}", tarfile.FIFOTYPE) for i in range(1100)))
    plan = plan_export(buf, lone=False)
    assert (len(plan.skipped), plan.skipped_count) == (1000, 1100)


def test_write_tree_creates_only_what_was_kept_with_safe_modes_and_own_owner(out_dir: tuple[Path, int]) -> None:
    root, fd = out_dir
    buf = archive(
        member("bin", tarfile.DIRTYPE, mode=0o1777),
        member("bin/suid", mode=0o4755, data=b"#!/bin/sh\n"),
        member("bin/world", mode=0o666, data=b"w"),
        member("bin/twin", tarfile.LNKTYPE, link="bin/suid"),
        member("bin/rel", tarfile.SYMTYPE, link="world"),
        member("bin/abs", tarfile.SYMTYPE, link="/etc/passwd"),
        member("deep/er/file", data=b"implicit parents"),
        member("pipe", tarfile.FIFOTYPE),
    )
    plan = plan_export(buf, lone=False)
    buf.seek(0)
    written = write_tree(buf, plan, fd)

    assert (written.files, written.bytes) == (4, len("#!/bin/sh\n") + 1 + len("implicit parents"))
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in root.rglob("*") if not p.is_symlink()}
    assert modes == {
        "bin": 0o755,
        "bin/suid": 0o755,
        "bin/world": 0o644,
        "bin/twin": 0o755,
        "deep": 0o755,
        "deep/er": 0o755,
        "deep/er/file": 0o644,
    }
    assert os.readlink(root / "bin" / "rel") == "world"
    assert not os.path.lexists(root / "bin" / "abs") and not os.path.lexists(root / "pipe")
    assert (root / "bin" / "twin").stat().st_ino == (root / "bin" / "suid").stat().st_ino
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in root.rglob("*")}
    assert owners == {(os.getuid(), os.getgid())}, "owners are the exporting user's, never the archive's"
    assert (root / "bin" / "suid").stat().st_mtime == 1_700_000_000


def test_write_tar_rewrites_every_header_and_drops_extended_attributes() -> None:
    buf = archive(
        member("suid", mode=0o4755, data=b"elf"),
        member("abs", tarfile.SYMTYPE, link="/root/.ssh/id_rsa"),
        member("sub/ok", data=b"ok"),
        pax={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"},
    )
    plan = plan_export(buf, lone=False)
    buf.seek(0)
    out = io.BytesIO()
    written = write_tar(buf, plan, out)
    out.seek(0)

    with tarfile.open(fileobj=out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(members["suid"]).read() == b"elf"  # type: ignore[union-attr]
    assert sorted(members) == ["sub", "sub/ok", "suid"]
    assert (written.files, written.bytes) == (2, 5)
    assert members["suid"].mode == 0o755
    assert {(m.uid, m.gid) for m in members.values()} == {(os.getuid(), os.getgid())}
    assert not any("xattr" in key for m in members.values() for key in m.pax_headers)


def test_a_single_entry_export_that_arrives_as_a_tree_is_refused() -> None:
    """An agent that says "file" but sends `d/` with `d/l -> ../x` would, once `d` is published
    as the output itself, plant a link one level above the output."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        directory = tarfile.TarInfo("d")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        link = tarfile.TarInfo("d/l")
        link.type = tarfile.SYMTYPE
        link.linkname = "../.ssh/authorized_keys"
        tar.addfile(link)
    archive.seek(0)
    with pytest.raises(LoneEntryMismatch):
        plan_export(archive, lone=True)
