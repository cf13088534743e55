"""The initramfs writer: newc cpio entries that parse back (ours and the host's cpio), and the /init script."""

from __future__ import annotations

import gzip
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.images.vm.initramfs import (
    BUSYBOX_APPLETS,
    INIT_SCRIPT,
    ROOT_INIT,
    CpioWriter,
    build_initramfs,
    init_script,
    is_static_elf,
)


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes
    rdev: tuple[int, int]


def parse_newc(archive: bytes) -> list[Entry]:
    """An independent reader of the newc format, to check the writer against."""
    entries = []
    offset = 0
    while True:
        header = archive[offset : offset + 110]
        assert header[:6] == b"070701", f"bad magic at {offset}"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, rdevmajor, rdevminor, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_start = offset + 110
        name = archive[name_start : name_start + namesize - 1].decode()
        assert archive[name_start + namesize - 1] == 0
        data_start = name_start + namesize
        data_start += -data_start % 4
        data = archive[data_start : data_start + filesize]
        offset = data_start + filesize
        offset += -offset % 4
        if name == "TRAILER!!!":
            assert offset == len(archive)
            return entries
        entries.append(Entry(name, mode, data, (rdevmajor, rdevminor)))


def fake_elf(static: bool) -> bytes:
    """A 64-bit ELF header with one program header: PT_LOAD (static) or PT_INTERP (dynamic)."""
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    header[0x20:0x28] = (64).to_bytes(8, "little")  # e_phoff
    header[0x36:0x38] = (56).to_bytes(2, "little")  # e_phentsize
    header[0x38:0x3A] = (1).to_bytes(2, "little")  # e_phnum
    program = bytearray(56)
    program[:4] = (1 if static else 3).to_bytes(4, "little")
    return bytes(header + program)


def test_cpio_entries_parse_back_with_names_modes_data_and_devices() -> None:
    archive = CpioWriter()
    archive.add_dir("bin")
    archive.add_file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    archive.add_file("odd-size", b"abcde")
    archive.add_symlink("bin/sh", "tool")
    archive.add_char_device("dev/console", 5, 1)
    entries = {e.name: e for e in parse_newc(archive.finish())}
    assert stat.S_ISDIR(entries["bin"].mode)
    assert entries["bin/tool"].data == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(entries["bin/tool"].mode) == 0o755
    assert entries["odd-size"].data == b"abcde"
    assert stat.S_ISLNK(entries["bin/sh"].mode) and entries["bin/sh"].data == b"tool"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)


def test_cpio_refuses_duplicate_names_and_entries_after_finish() -> None:
    archive = CpioWriter()
    archive.add_file("init", b"x")
    with pytest.raises(ValueError):
        archive.add_file("/init", b"y")
    archive.finish()
    with pytest.raises(ValueError):
        archive.add_dir("late")


@pytest.mark.skipif(shutil.which("cpio") is None, reason="the host has no cpio program")
def test_host_cpio_extracts_what_the_writer_wrote(tmp_path: Path) -> None:
    archive = CpioWriter()
    archive.add_dir("etc")
    archive.add_file("etc/motd", b"hello\n" * 1000, 0o600)
    archive.add_symlink("motd", "etc/motd")
    (tmp_path / "a.cpio").write_bytes(archive.finish())
    out = tmp_path / "out"
    out.mkdir()
    with open(tmp_path / "a.cpio", "rb") as source:
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], stdin=source, cwd=out, check=True)
    assert (out / "etc" / "motd").read_bytes() == b"hello\n" * 1000
    assert stat.S_IMODE((out / "etc" / "motd").stat().st_mode) == 0o600
    assert (out / "motd").is_symlink() and (out / "motd").read_bytes() == b"hello\n" * 1000


def test_initramfs_holds_busybox_modules_in_load_order_and_init(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(fake_elf(static=True))
    modules = []
    for name in ("virtio_ring", "virtio", "virtio_mmio"):
        (tmp_path / f"{name}.ko").write_bytes(f"module {name}".encode())
        modules.append((name, tmp_path / f"{name}.ko"))
    image = build_initramfs(busybox, modules)
    assert image == build_initramfs(busybox, modules), "the initramfs is not deterministic"
    entries = {e.name: e for e in parse_newc(gzip.decompress(image))}
    assert entries["bin/busybox"].data == busybox.read_bytes()
    assert all(entries[f"bin/{applet}"].data == b"busybox" for applet in BUSYBOX_APPLETS)
    assert entries["lib/modules/load-order"].data == b"virtio_ring\nvirtio\nvirtio_mmio\n"
    assert entries["lib/modules/virtio.ko"].data == b"module virtio"
    assert entries["init"].data == INIT_SCRIPT.encode()
    assert stat.S_IMODE(entries["init"].mode) == 0o755
    assert entries["dev/console"].rdev == (5, 1)
    assert {"proc", "sys", "newroot"} <= set(entries)


def test_init_script_is_valid_shell_that_switches_to_roost_init(tmp_path: Path) -> None:
    script = tmp_path / "init"
    script.write_text(INIT_SCRIPT)
    subprocess.run(["sh", "-n", str(script)], check=True)
    assert INIT_SCRIPT.startswith("#!/bin/sh\n")
    assert f"exec switch_root /newroot {ROOT_INIT} " in INIT_SCRIPT
    # A failed boot must end the VM rather than hang it.
    assert "reboot -f" not in INIT_SCRIPT and '"$halt" -f' in INIT_SCRIPT
    assert "roost.halt=poweroff) halt=poweroff" in INIT_SCRIPT


def test_init_script_can_hand_over_through_the_bundles_loader(tmp_path: Path) -> None:
    loader = "/opt/roost/python/lib/ld-linux-x86-64.so.2"
    words = (loader, "--library-path", "/opt/roost/python/lib", "/opt/roost/python/bin/python3", "-I", ROOT_INIT)
    script = init_script(words)
    (tmp_path / "init").write_text(script)
    subprocess.run(["sh", "-n", str(tmp_path / "init")], check=True)
    assert script.splitlines()[-1] == f'exec switch_root /newroot {" ".join(words)} "$@"'
    assert f'[ -x "/newroot{loader}" ] || [ -L "/newroot{loader}" ] || fail "$root has no {loader}"' in script
    changed = [(a, b) for a, b in zip(script.splitlines(), INIT_SCRIPT.splitlines(), strict=True) if a != b]
    assert len(changed) == 2, "only the program check and the hand-over differ"
    assert init_script() == INIT_SCRIPT and f"exec switch_root /newroot {ROOT_INIT} " in INIT_SCRIPT
    busybox = tmp_path / "busybox"
    busybox.write_bytes(fake_elf(static=True))
    entries = {e.name: e for e in parse_newc(gzip.decompress(build_initramfs(busybox, [], script)))}
    assert entries["init"].data == script.encode()


@pytest.mark.parametrize("word", ["", "a b", "$(reboot)", "x;y", '"q"', "back`tick`"])
def test_init_script_refuses_words_the_shell_would_split_or_expand(word: str) -> None:
    with pytest.raises(ValueError):
        init_script((word, ROOT_INIT))


def test_static_elf_check_tells_static_from_dynamic_and_non_elf(tmp_path: Path) -> None:
    static, dynamic, text = tmp_path / "static", tmp_path / "dynamic", tmp_path / "text"
    static.write_bytes(fake_elf(static=True))
    dynamic.write_bytes(fake_elf(static=False))
    text.write_text("#!/bin/sh\n")
    assert is_static_elf(static)
    assert not is_static_elf(dynamic)
    assert not is_static_elf(text)
    assert not is_static_elf(tmp_path / "missing")
