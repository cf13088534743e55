"""archive.import / archive.export handlers, called directly with an in-memory request."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from roost.agent.context import RequestContext, UploadBuffer
from roost.agent.fs import dirfd
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.state import AgentState
from roost.protocol import OpError

Tree = dict[str, tuple[str, int, bytes]]


@pytest.fixture
def agent(tmp_path: Path) -> AgentState:
    (tmp_path / "ws").mkdir()
    return AgentState(WorkspacePaths(str(tmp_path / "ws")), str(tmp_path / "state"), str(tmp_path / "scratch"), {})


@pytest.fixture
def ws(agent: AgentState) -> Path:
    return Path(agent.paths.root)


def _context(
    op: str, args: dict[str, object], upload: bytes | None = None
) -> tuple[RequestContext, list[tuple[str, bytes]]]:
    sent: list[tuple[str, bytes]] = []
    buffer = None
    if upload is not None:
        buffer = UploadBuffer(max_chunks=1_000_000)
        for start in range(0, len(upload), 7001):  # odd chunk size: members straddle chunk borders
            buffer.put(upload[start : start + 7001])
        buffer.end()
    ctx = RequestContext(1, op, dict(args), b"", lambda ch, data: sent.append((ch, data)), buffer, threading.Event())
    return ctx, sent


def _import(agent: AgentState, data: bytes, **args: object) -> dict[str, object]:
    ctx, _ = _context("archive.import", args, data)
    return OpTable(agent).call(ctx).wire_result()


def _export(agent: AgentState, **args: object) -> tuple[bytes, dict[str, object]]:
    ctx, sent = _context("archive.export", args)
    result = OpTable(agent).call(ctx).wire_result()
    assert all(channel == "data" for channel, _ in sent)
    return b"".join(data for _, data in sent), result


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, link, mode, 1_600_000_000
    return info


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return _member(name, mode=mode), data


def _snapshot(root: Path) -> Tree:
    tree: Tree = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", 0, os.readlink(path).encode())
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
            else:
                tree[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return tree


def _scratch_is_empty(agent: AgentState) -> bool:
    return not os.path.exists(agent.scratch_dir) or not os.listdir(agent.scratch_dir)


def test_export_then_import_round_trips_contents_modes_and_symlinks(agent: AgentState, ws: Path) -> None:
    src = ws / "src"
    (src / "pkg" / "empty").mkdir(parents=True)
    (src / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o755)
    (src / "pkg" / "secret.txt").write_bytes(b"\x00\xffbinary")
    (src / "pkg" / "secret.txt").chmod(0o600)
    (src / "pkg" / "empty").chmod(0o750)
    (src / "link").symlink_to("pkg/secret.txt")
    (src / "dangling").symlink_to("nowhere")
    os.link(src / "run.sh", src / "pkg" / "hard.sh")
    os.utime(src / "run.sh", (1_500_000_000, 1_500_000_000))

    data, exported = _export(agent, path="/workspace/src")
    result = _import(agent, data, dest="/workspace/copy")

    assert _snapshot(ws / "copy") == _snapshot(src)
    assert (ws / "copy" / "run.sh").stat().st_mtime == 1_500_000_000
    assert exported == {
        "path": "/workspace/src",
        "files": 3,
        "dirs": 2,
        "symlinks": 2,
        "bytes": 26,
        "skipped": 0,
        "changed": 0,
    }
    assert result == {"dest": "/workspace/copy", "files": 3, "dirs": 2, "symlinks": 2, "bytes": 26, "deleted": 0}


def test_export_names_members_relative_to_the_directory(agent: AgentState, ws: Path) -> None:
    (ws / "d" / "sub").mkdir(parents=True)
    (ws / "d" / "sub" / "f").write_text("f")
    data, _ = _export(agent, path="d")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["sub", "sub/f"]


def test_export_of_a_file_uses_its_basename(agent: AgentState, ws: Path) -> None:
    (ws / "d").mkdir()
    (ws / "d" / "notes.txt").write_text("hello")
    data, result = _export(agent, path="/workspace/d/notes.txt")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["notes.txt"]
        member = tar.extractfile("notes.txt")
        assert member is not None and member.read() == b"hello"
    assert result["files"] == 1 and result["bytes"] == 5


def test_export_stores_links_unfollowed_and_skips_fifos(agent: AgentState, ws: Path) -> None:
    (ws / "out").symlink_to("/etc")
    os.mkfifo(ws / "pipe")
    data, result = _export(agent)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [(m.name, m.issym(), m.linkname) for m in members] == [("out", True, "/etc")]
    assert result["skipped"] == 1 and result["symlinks"] == 1


def test_export_of_a_missing_path_is_path_not_found(agent: AgentState) -> None:
    with pytest.raises(OpError) as err:
        _export(agent, path="nope")
    assert err.value.code == "path_not_found"


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_export_leaves_out_what_the_rules_and_the_ignore_files_above_the_path_exclude(
    agent: AgentState, ws: Path
) -> None:
    (ws / "app" / "build").mkdir(parents=True)
    (ws / "app" / ".git").mkdir()
    for rel in ("app/main.c", "app/main.o", "app/build/out", "app/notes.log", "app/.git/HEAD"):
        (ws / rel).write_text("x")
    (ws / ".gitignore").write_text("*.o\n")  # above the exported directory: it still applies
    (ws / "app" / ".gitignore").write_text("build/\n")

    data, result = _export(agent, path="app", exclude=["*.log"], gitignore=True, include_git_dir=False)

    assert _names(data) == [".gitignore", "main.c"]
    assert result["files"] == 2
    assert _names(_export(agent, path="app", exclude=["*.log"])[0]) == [
        ".git", ".git/HEAD", ".gitignore", "build", "build/out", "main.c", "main.o",
    ]  # fmt: skip


def test_export_of_a_path_the_rules_exclude_is_path_excluded(agent: AgentState, ws: Path) -> None:
    (ws / "node_modules" / "pkg").mkdir(parents=True)
    (ws / "node_modules" / "pkg" / "index.js").write_text("x")
    (ws / "debug.log").write_text("x")

    for path, args in (("node_modules/pkg", {"exclude": ["node_modules/"]}), ("debug.log", {"exclude": ["*.log"]})):
        with pytest.raises(OpError) as err:
            _export(agent, path=path, **args)
        assert err.value.code == "path_excluded" and err.value.hint


def test_import_creates_a_missing_dest_and_reads_compressed_streams(agent: AgentState, ws: Path) -> None:
    data = gzip.compress(_tar((_member("dir", tarfile.DIRTYPE, mode=0o755), b""), _file("dir/a.txt", b"abc")))
    result = _import(agent, data, dest="new/place")
    assert (ws / "new" / "place" / "dir" / "a.txt").read_bytes() == b"abc"
    assert result == {"dest": "/workspace/new/place", "files": 1, "dirs": 1, "symlinks": 0, "bytes": 3, "deleted": 0}
    assert _scratch_is_empty(agent)


def test_import_merges_into_existing_directories_keeping_unrelated_files(agent: AgentState, ws: Path) -> None:
    (ws / "dir").mkdir()
    (ws / "dir" / "keep.txt").write_text("keep")
    (ws / "dir" / "a.txt").write_text("old")
    (ws / "was_dir").mkdir()
    (ws / "was_dir" / "x").write_text("x")
    _import(agent, _tar(_file("dir/a.txt", b"new"), _file("was_dir", b"now a file")))
    assert (ws / "dir" / "keep.txt").read_text() == "keep"
    assert (ws / "dir" / "a.txt").read_text() == "new"
    assert (ws / "was_dir").read_text() == "now a file"


def test_import_with_delete_mirrors_the_archive(agent: AgentState, ws: Path) -> None:
    (ws / "dir" / "gone_dir").mkdir(parents=True)
    (ws / "dir" / "gone_dir" / "f").write_text("f")
    (ws / "dir" / "a.txt").write_text("old")
    (ws / "top.txt").write_text("top")
    dir_mode = stat.S_IMODE((ws / "dir").stat().st_mode)
    result = _import(agent, _tar(_file("dir/a.txt", b"new"), _file("b.txt", b"b")), delete=True)
    assert _snapshot(ws) == {
        "dir": ("dir", dir_mode, b""),
        "dir/a.txt": ("file", 0o644, b"new"),
        "b.txt": ("file", 0o644, b"b"),
    }
    assert result["deleted"] == 3


def test_import_accepts_a_dot_slash_archive(agent: AgentState, ws: Path) -> None:
    ws.chmod(0o751)
    data = _tar((_member("./", tarfile.DIRTYPE, mode=0o700), b""), _file("./f", b"f"))
    _import(agent, data)
    assert (ws / "f").read_text() == "f"
    assert stat.S_IMODE(ws.stat().st_mode) == 0o751  # the destination keeps its own mode


def test_import_strips_setuid_setgid_and_sticky_bits(agent: AgentState, ws: Path) -> None:
    data = _tar(_file("suid", mode=0o4755), (_member("sticky", tarfile.DIRTYPE, mode=0o1777), b""))
    _import(agent, data)
    assert stat.S_IMODE((ws / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((ws / "sticky").stat().st_mode) == 0o777


def test_import_gives_files_their_archived_mode_whatever_the_umask_would_keep(agent: AgentState, ws: Path) -> None:
    modes = {"open": 0o777, "group": 0o664, "usual": 0o644, "private": 0o600, "none": 0o000}
    data = _tar(*(_file(name, name.encode(), mode=mode) for name, mode in modes.items()))

    _import(agent, data)

    assert {name: stat.S_IMODE((ws / name).stat().st_mode) for name in modes} == modes
    assert (ws / "open").read_bytes() == b"open"


def test_a_later_member_replaces_what_an_earlier_one_put_at_its_name(agent: AgentState, ws: Path) -> None:
    data = _tar(
        _file("twice", b"first"),
        _file("twice", b"second", mode=0o600),
        (_member("was-link", tarfile.SYMTYPE, link="twice"), b""),
        _file("was-link", b"a file now"),
        (_member("was-dir", tarfile.DIRTYPE, mode=0o755), b""),
        _file("was-dir/inside"),
        _file("was-dir", b"a file too"),
    )

    _import(agent, data)

    assert (ws / "twice").read_bytes() == b"second"
    assert stat.S_IMODE((ws / "twice").stat().st_mode) == 0o600
    assert not (ws / "was-link").is_symlink() and (ws / "was-link").read_bytes() == b"a file now"
    assert (ws / "was-dir").is_file() and (ws / "was-dir").read_bytes() == b"a file too"


def test_import_restores_hardlinks_within_the_archive(agent: AgentState, ws: Path) -> None:
    _import(agent, _tar(_file("a", b"same"), (_member("b", tarfile.LNKTYPE, link="a"), b"")))
    assert (ws / "a").stat().st_ino == (ws / "b").stat().st_ino


REJECTED: dict[str, bytes] = {
    "absolute name": _tar(_file("/etc/evil")),
    "dotdot name": _tar(_file("ok.txt"), _file("sub/../../evil")),
    "absolute symlink": _tar((_member("l", tarfile.SYMTYPE, link="/etc/passwd"), b"")),
    "escaping symlink": _tar((_member("d/l", tarfile.SYMTYPE, link="../../outside"), b"")),
    "escaping hardlink": _tar((_member("h", tarfile.LNKTYPE, link="../outside"), b"")),
    "hardlink to missing": _tar((_member("h", tarfile.LNKTYPE, link="nothing"), b"")),
    "device node": _tar((_member("dev", tarfile.CHRTYPE), b"")),
    "fifo": _tar((_member("fifo", tarfile.FIFOTYPE), b"")),
    "member through earlier symlink": _tar((_member("l", tarfile.SYMTYPE, link="."), b""), _file("l/x")),
    "chained symlinks": _tar(
        (_member("a", tarfile.SYMTYPE, link="."), b""), (_member("b", tarfile.SYMTYPE, link="a/a/a/../.."), b"")
    ),
    "link retargeted later": _tar(
        (_member("l", tarfile.SYMTYPE, link="d/.."), b""), (_member("d", tarfile.SYMTYPE, link="."), b"")
    ),
    "garbage": b"this is not a tar stream" * 100,
    "truncated": _tar(_file("big", b"y" * 100_000))[:30_000],
}


@pytest.mark.parametrize("kind", sorted(REJECTED))
def test_import_rejection_leaves_dest_untouched_and_no_staging(agent: AgentState, ws: Path, kind: str) -> None:
    (ws / "existing.txt").write_text("keep me")
    before = _snapshot(ws)
    with pytest.raises(OpError) as err:
        _import(agent, REJECTED[kind], delete=True)
    assert err.value.code == "archive_rejected"
    assert err.value.hint
    assert _snapshot(ws) == before
    assert _scratch_is_empty(agent)


def test_import_rejection_names_the_member(agent: AgentState) -> None:
    with pytest.raises(OpError) as err:
        _import(agent, REJECTED["member through earlier symlink"])
    assert "'l/x'" in err.value.message and "symlink" in err.value.message


def test_import_rejects_dest_outside_the_workspace(agent: AgentState) -> None:
    with pytest.raises(OpError) as err:
        _import(agent, _tar(_file("f")), dest="/etc")
    assert err.value.code == "path_outside_workspace"


def test_import_does_not_write_through_a_symlink_in_dest(agent: AgentState, ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / "sub").symlink_to(outside)
    _import(agent, _tar(_file("sub/f", b"inside")))
    assert not os.listdir(outside)
    assert (ws / "sub").is_dir() and not (ws / "sub").is_symlink()


def test_import_cancelled_leaves_dest_untouched(agent: AgentState, ws: Path) -> None:
    ctx, _ = _context("archive.import", {}, _tar(_file("a"), _file("b")))
    ctx.cancelled.set()
    with pytest.raises(OpError) as err:
        OpTable(agent).call(ctx)
    assert err.value.code == "cancelled"
    assert _snapshot(ws) == {}
    assert _scratch_is_empty(agent)


def test_export_never_reads_a_file_swapped_for_a_link_after_it_was_listed(
    agent: AgentState, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secret").write_text("outside")
    (ws / "d").mkdir()
    (ws / "d" / "f.txt").write_text("inside")
    real_open_regular = dirfd.open_regular

    def swap_then_open(dir_fd: int, name: str) -> tuple[int, os.stat_result] | None:
        os.unlink(ws / "d" / "f.txt")  # listed as a regular file; a link out by the time it is opened
        os.symlink(tmp_path / "secret", ws / "d" / "f.txt")
        return real_open_regular(dir_fd, name)

    with monkeypatch.context() as patch:
        patch.setattr(dirfd, "open_regular", swap_then_open)
        data, result = _export(agent, path="d")
    assert b"outside" not in data
    assert (result["files"], result["skipped"]) == (0, 1)


def test_import_never_stages_through_a_scratch_dir_swapped_for_a_link(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / ".roost-staging").symlink_to(outside)  # the sandbox keeps its scratch inside /workspace
    agent = AgentState(WorkspacePaths(str(ws)), str(tmp_path / "state"), str(ws / ".roost-staging"), {})
    with pytest.raises(OpError) as err:
        _import(agent, _tar(_file("f", b"x")))
    assert err.value.code == "invalid_argument"
    assert list(outside.iterdir()) == []
    assert not (ws / "f").exists()


def test_a_file_that_shrinks_while_it_is_exported_is_padded_so_the_tar_stays_whole() -> None:
    from roost.agent.files.archive import _SizedReader

    reader = _SizedReader(io.BytesIO(b"abc"), 8)  # the header promised 8 bytes; 3 are left
    out = io.BytesIO()
    info = tarfile.TarInfo("log.txt")
    info.size = 8
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(info, reader)  # type: ignore[arg-type]
    assert reader.shrank
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        member = tar.extractfile("log.txt")
        assert member is not None and member.read() == b"abc" + bytes(5)
