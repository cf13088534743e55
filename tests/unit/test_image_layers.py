"""Applying OCI tar layers onto a rootfs (whiteouts, opaque dirs, ordering, every refusal) and writing one."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from roost.errors import ImageError
from roost.images.layers import apply_layer, layer_from_directory

MTIME = 1_700_000_000


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **extra: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = MTIME
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, mode=mode, size=len(data)), data


def directory(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, tarfile.DIRTYPE, mode), b""


def symlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target), b""


def hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, tarfile.LNKTYPE, linkname=target), b""


def layer(tmp_path: Path, name: str, *entries: tuple[tarfile.TarInfo, bytes], gz: bool = True) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    path = tmp_path / name
    path.write_bytes(gzip.compress(buf.getvalue()) if gz else buf.getvalue())
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    dest = tmp_path / "rootfs"
    dest.mkdir()
    return dest


def tree(base: Path) -> dict[str, str]:
    """Every entry under `base` as path -> kind:content, for comparing whole trees."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(base).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = f"link:{os.readlink(path)}"
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir:{oct(stat.S_IMODE(st.st_mode))}"
            else:
                out[rel] = f"file:{oct(stat.S_IMODE(st.st_mode))}:{path.read_bytes()!r}"
    return out


def test_apply_extracts_files_dirs_symlinks_with_modes_and_mtimes(tmp_path: Path, root: Path) -> None:
    stats = apply_layer(
        layer(
            tmp_path,
            "l1",
            directory("usr/bin"),
            file("usr/bin/su", b"#!/bin/sh\n", 0o4755),
            file("etc/hostname", b"roost\n"),
            symlink("bin", "/usr/bin"),
            hardlink("usr/bin/su2", "usr/bin/su"),
        ),
        root,
    )
    assert stats.files == 2 and stats.dirs == 1 and stats.symlinks == 1 and stats.hardlinks == 1
    assert stats.bytes_written == len(b"#!/bin/sh\n") + len(b"roost\n")
    su = root / "usr/bin/su"
    assert stat.S_IMODE(su.lstat().st_mode) == 0o4755  # setuid kept: a rootfs needs it
    assert su.lstat().st_mtime == MTIME
    assert (root / "usr/bin").lstat().st_mtime == MTIME  # directory times set after their children
    assert os.readlink(root / "bin") == "/usr/bin"  # absolute symlinks are fine inside a rootfs
    assert (root / "usr/bin/su2").lstat().st_ino == su.lstat().st_ino
    assert (root / "etc/hostname").read_bytes() == b"roost\n"


def test_plain_tar_layers_apply_too(tmp_path: Path, root: Path) -> None:
    apply_layer(layer(tmp_path, "l1", file("a", b"x"), gz=False), root)
    assert (root / "a").read_bytes() == b"x"


def test_upper_layer_replaces_content_and_types(tmp_path: Path, root: Path) -> None:
    apply_layer(
        layer(tmp_path, "l1", file("f", b"old"), file("d/inner", b"1"), directory("was_dir"), file("x", b"")), root
    )
    apply_layer(layer(tmp_path, "l2", file("f", b"new"), file("d", b"now a file"), symlink("x", "f")), root)
    assert (root / "f").read_bytes() == b"new"
    assert (root / "d").read_bytes() == b"now a file"
    assert os.readlink(root / "x") == "f"
    apply_layer(layer(tmp_path, "l3", directory("f"), file("f/child", b"c")), root)
    assert (root / "f/child").read_bytes() == b"c"


def test_whiteout_deletes_lower_entry_and_is_not_extracted(tmp_path: Path, root: Path) -> None:
    apply_layer(layer(tmp_path, "l1", file("etc/keep", b"k"), file("etc/gone", b"g"), file("var/tree/deep/x")), root)
    stats = apply_layer(layer(tmp_path, "l2", file("etc/.wh.gone"), file("var/.wh.tree"), file(".wh.missing")), root)
    assert stats.whiteouts == 3
    assert tree(root) == {
        "etc": "dir:0o755",
        "var": "dir:0o755",
        "etc/keep": "file:0o644:b'k'",
    }


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_dir_hides_lower_contents_but_keeps_same_layer_entries(
    tmp_path: Path, root: Path, marker_first: bool
) -> None:
    apply_layer(layer(tmp_path, "l1", file("opt/old", b"o"), file("opt/sub/lower", b"l"), file("keep", b"k")), root)
    marker = file("opt/.wh..wh..opq")
    new = [file("opt/new", b"n"), file("opt/sub/upper", b"u")]
    apply_layer(layer(tmp_path, "l2", *([marker, *new] if marker_first else [*new, marker])), root)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()) == [
        "keep",
        "opt/new",
        "opt/sub/upper",
    ]


def test_whiteout_in_same_layer_spares_entries_of_that_layer(tmp_path: Path, root: Path) -> None:
    apply_layer(layer(tmp_path, "l1", file("d/lower", b"l")), root)
    apply_layer(layer(tmp_path, "l2", file("d/upper", b"u"), file(".wh.d")), root)
    assert sorted(os.listdir(root / "d")) == ["upper"]


def test_device_nodes_and_fifos_are_skipped_and_counted(tmp_path: Path, root: Path) -> None:
    stats = apply_layer(
        layer(
            tmp_path,
            "l1",
            (_info("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3), b""),
            (_info("dev/sda", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=0), b""),
            (_info("run/fifo", tarfile.FIFOTYPE), b""),
            file("dev/.keep"),
        ),
        root,
    )
    assert stats.skipped_devices == 3
    assert sorted(os.listdir(root / "dev")) == [".keep"]


def test_read_only_directories_get_their_mode_after_their_children(tmp_path: Path, root: Path) -> None:
    apply_layer(layer(tmp_path, "l1", directory("ro", 0o555), file("ro/f", b"x")), root)
    assert stat.S_IMODE((root / "ro").lstat().st_mode) == 0o555
    assert (root / "ro/f").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([file("/etc/passwd")], "absolute"),
        ([file("../escape")], ".."),
        ([file("a/../../escape")], ".."),
        ([symlink("link", "/"), file("link/etc/owned")], "symlink"),
        ([symlink("link", "../.."), directory("link/x")], "symlink"),
        ([file("plain"), file("plain/child")], "non-directory"),
        ([hardlink("h", "/etc/passwd")], "absolute"),
        ([hardlink("h", "../outside")], ".."),
        ([hardlink("h", "later"), file("later")], "not extracted yet"),
        ([hardlink("h", "no/such/dir/f")], "not extracted yet"),
        ([symlink("s", "/etc/passwd"), hardlink("h", "s")], "not a regular file"),
        ([symlink("link", "/tmp"), file("link/.wh.x")], "symlink"),
    ],
)
def test_unsafe_entries_are_rejected(
    tmp_path: Path, root: Path, entries: list[tuple[tarfile.TarInfo, bytes]], why: str
) -> None:
    with pytest.raises(ImageError) as caught:
        apply_layer(layer(tmp_path, "bad", *entries), root)
    assert caught.value.code == "layer_rejected"
    assert why in caught.value.message
    assert caught.value.hint
    assert not (tmp_path / "escape").exists() and not (tmp_path / "outside").exists()


def test_lower_symlink_is_never_written_through(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    apply_layer(layer(tmp_path, "l1", symlink("lib", str(outside))), root)
    with pytest.raises(ImageError) as caught:
        apply_layer(layer(tmp_path, "l2", file("lib/evil.so", b"x")), root)
    assert caught.value.code == "layer_rejected"
    assert list(outside.iterdir()) == []


def test_whiteout_never_deletes_through_a_symlink(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    apply_layer(layer(tmp_path, "l1", symlink("lib", str(outside))), root)
    with pytest.raises(ImageError):
        apply_layer(layer(tmp_path, "l2", file("lib/.wh.precious")), root)
    with pytest.raises(ImageError):
        apply_layer(layer(tmp_path, "l3", file("lib/.wh..wh..opq")), root)
    assert (outside / "precious").read_text() == "keep"


def test_a_corrupt_archive_is_layer_corrupt(tmp_path: Path, root: Path) -> None:
    good = layer(tmp_path, "good", file("a", b"x" * 10_000))
    broken = tmp_path / "broken"
    broken.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ImageError) as caught:
        apply_layer(broken, root)
    assert caught.value.code == "layer_corrupt"


def _sample_rootfs(base: Path) -> Path:
    (base / "usr/bin").mkdir(parents=True)
    (base / "etc").mkdir()
    (base / "empty").mkdir()
    (base / "usr/bin/tool").write_text("#!/bin/sh\necho hi\n")
    (base / "usr/bin/tool").chmod(0o755)
    (base / "etc/os-release").write_text("ID=roost\n")
    os.link(base / "etc/os-release", base / "etc/os-release.hard")
    (base / "bin").symlink_to("usr/bin")
    for path in [*base.rglob("*"), base]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    return base


def test_layer_from_directory_is_reproducible_and_digests_match_the_bytes(tmp_path: Path) -> None:
    src = _sample_rootfs(tmp_path / "src")
    first = layer_from_directory(src, tmp_path / "one.tar.gz")
    second = layer_from_directory(src, tmp_path / "two.tar.gz")
    assert first == second
    blob = (tmp_path / "one.tar.gz").read_bytes()
    assert first.digest == f"sha256:{hashlib.sha256(blob).hexdigest()}" and first.size == len(blob)
    plain = gzip.decompress(blob)
    assert first.diff_id == f"sha256:{hashlib.sha256(plain).hexdigest()}" and first.diff_size == len(plain)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_layer_from_directory_round_trips_through_apply(tmp_path: Path, root: Path) -> None:
    src = _sample_rootfs(tmp_path / "src")
    layer_from_directory(src, tmp_path / "layer.tar.gz")
    stats = apply_layer(tmp_path / "layer.tar.gz", root)
    assert tree(root) == tree(src)
    assert stats.hardlinks == 1
    assert (root / "usr/bin/tool").lstat().st_mtime == MTIME
    with tarfile.open(tmp_path / "layer.tar.gz") as tar:
        names = tar.getnames()
        assert names == sorted(names, key=lambda n: n.split("/"))
        assert all(m.uname == "" and m.gname == "" for m in tar.getmembers())
