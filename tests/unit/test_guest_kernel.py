"""Choosing the guest's kernel modules: dependency order from modules.dep or .modinfo, built-ins skipped;
and reading apt's answers about the kernel package."""

from __future__ import annotations

import json
import lzma
import os
import struct
from pathlib import Path

import pytest

from roost.errors import ImageError
from roost.images.vm.debs import AptSource, DebRef, apt_state_stamp, first_dependency, parse_stanza
from roost.images.vm.kernel import (
    GUEST_MODULES,
    ModuleTree,
    bundle_key,
    load_order,
    modinfo,
    module_name,
    parse_modules_dep,
)


def fake_module(fields: dict[str, str]) -> bytes:
    """A minimal 64-bit ELF with a section header table: null, .modinfo, .shstrtab."""
    modinfo_data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in fields.items())
    names = b"\0.modinfo\0.shstrtab\0"
    header_size, section_size = 64, 64
    modinfo_at = header_size
    names_at = modinfo_at + len(modinfo_data)
    sections_at = names_at + len(names)
    header = bytearray(header_size)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, sections_at)
    struct.pack_into("<HHH", header, 0x3A, section_size, 3, 2)

    def section(name_offset: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQ", name_offset, 1, 0, 0, offset, size) + bytes(section_size - 40)

    table = section(0, 0, 0) + section(1, modinfo_at, len(modinfo_data)) + section(10, names_at, len(names))
    return bytes(header) + modinfo_data + names + table


def test_module_names_drop_compression_suffixes_and_read_dashes_as_underscores() -> None:
    assert module_name("kernel/net/vmw_vsock/vsock.ko") == "vsock"
    assert module_name("virtio-rng.ko.xz") == "virtio_rng"
    assert module_name("/lib/modules/x/failover.ko.zst") == "failover"


def test_modules_dep_lines_become_names_and_their_dependencies() -> None:
    text = (
        "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
        "kernel/drivers/virtio/virtio_ring.ko:\n"
    )
    assert parse_modules_dep(text) == {"virtio_mmio": ("virtio", "virtio_ring"), "virtio_ring": ()}


def test_load_order_puts_dependencies_first_keeps_wanted_order_and_skips_builtins() -> None:
    deps = {
        "virtio_ring": (),
        "virtio": ("virtio_ring",),
        "virtio_mmio": ("virtio", "virtio_ring"),
        "virtio_net": ("virtio_ring", "virtio", "net_failover"),
        "net_failover": ("failover",),
        "failover": (),
    }
    order = load_order(["virtio_mmio", "ext4", "virtio_net"], deps.__getitem__, lambda name: name == "ext4")
    assert order == ["virtio_ring", "virtio", "virtio_mmio", "failover", "net_failover", "virtio_net"]


def test_a_module_that_is_neither_present_nor_built_in_is_named_with_who_needs_it() -> None:
    deps = {"virtio_blk": ("virtio", "virtio_ring"), "virtio_ring": ()}
    with pytest.raises(ImageError) as caught:
        load_order(["virtio_blk"], deps.__getitem__, lambda _name: False)
    assert caught.value.code == "module_missing"
    assert "'virtio'" in caught.value.message and "virtio_blk" in caught.value.message


def test_a_dependency_cycle_is_reported() -> None:
    deps = {"a": ("b",), "b": ("a",)}
    with pytest.raises(ImageError) as caught:
        load_order(["a"], deps.__getitem__, lambda _name: False)
    assert caught.value.code == "module_cycle"


def test_modinfo_reads_the_modinfo_section_of_a_module() -> None:
    elf = fake_module({"name": "virtio_mmio", "depends": "virtio,virtio_ring", "license": "GPL"})
    fields = modinfo(elf)
    assert fields["depends"] == ["virtio,virtio_ring"]
    assert fields["name"] == ["virtio_mmio"]
    with pytest.raises(ValueError):
        modinfo(b"not an elf" * 10)


def test_module_tree_without_modules_dep_reads_dependencies_from_modinfo(tmp_path: Path) -> None:
    root = tmp_path / "lib" / "modules" / "6.1.0-99-cloud-amd64"
    (root / "kernel" / "virtio").mkdir(parents=True)
    (root / "kernel" / "virtio" / "virtio_ring.ko").write_bytes(fake_module({"name": "virtio_ring", "depends": ""}))
    (root / "kernel" / "virtio" / "virtio.ko.xz").write_bytes(
        lzma.compress(fake_module({"name": "virtio", "depends": "virtio_ring"}))
    )
    (root / "kernel" / "virtio" / "virtio-mmio.ko").write_bytes(
        fake_module({"name": "virtio_mmio", "depends": "virtio,virtio_ring"})
    )
    (root / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n")
    tree = ModuleTree(root)
    assert tree.is_builtin("ext4") and not tree.is_builtin("virtio")
    assert tree.depends("virtio") == ("virtio_ring",)
    order = load_order(["virtio_mmio", "ext4", "jbd2"], tree.depends, tree.is_builtin)
    assert order == ["virtio_ring", "virtio", "virtio_mmio"]


def test_module_tree_prefers_modules_dep_when_present(tmp_path: Path) -> None:
    root = tmp_path / "6.1.0"
    root.mkdir()
    (root / "a.ko").write_bytes(fake_module({"depends": "wrong"}))
    (root / "b.ko").write_bytes(fake_module({"depends": ""}))
    (root / "modules.dep").write_text("a.ko: b.ko\nb.ko:\n")
    assert ModuleTree(root).depends("a") == ("b",)


def test_the_guest_module_list_covers_disk_console_vsock_and_network() -> None:
    wanted = set(GUEST_MODULES)
    assert {"virtio_mmio", "virtio_blk", "virtio_console", "ext4", "vmw_vsock_virtio_transport", "virtio_net"} <= wanted
    assert GUEST_MODULES.index("virtio_ring") < GUEST_MODULES.index("virtio")


def test_the_kernel_bundle_key_follows_the_package_digest_and_module_set() -> None:
    ref = DebRef("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2", "ab" * 32)
    other = DebRef(ref.package, ref.version, "cd" * 32)
    assert bundle_key(ref) == bundle_key(ref)
    assert bundle_key(ref) != bundle_key(other)
    assert bundle_key(ref) != bundle_key(ref, ("virtio",))


def test_apt_stanzas_and_the_metapackage_dependency_are_read() -> None:
    text = (
        "Package: linux-image-cloud-amd64\nSource: linux-signed-amd64\nVersion: 6.1.192-2\n"
        "Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\nDescription: Linux for cloud\n"
        " continued description\nSHA256: 00ff\n\nPackage: second\n"
    )
    fields = parse_stanza(text)
    assert fields["Package"] == "linux-image-cloud-amd64"
    assert fields["Description"] == "Linux for cloud\ncontinued description"
    assert "second" not in fields.values()
    assert first_dependency(fields["Depends"]) == ("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2")
    assert first_dependency("busybox | busybox-static, libc6 (>= 2.34)") == ("busybox", None)
    assert DebRef("busybox-static", "1:1.35.0-4", "ab" * 32).filename == "busybox-static_1%3a1.35.0-4_abababababab.deb"


def test_apt_state_stamp_changes_when_a_package_list_changes(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "main_Packages").write_text("Package: a\n")
    before = apt_state_stamp((lists, tmp_path / "no-such-file"))
    assert before == apt_state_stamp((lists, tmp_path / "no-such-file"))
    (lists / "main_Packages").write_text("Package: a\nPackage: b\n")
    assert apt_state_stamp((lists, tmp_path / "no-such-file")) != before


def test_remembered_apt_answers_are_used_without_running_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memo = tmp_path / "apt-resolved.json"
    fields = {"Package": "busybox-static", "Version": "1:1.35.0-4", "SHA256": "ab" * 32}
    memo.write_text(json.dumps({"stamp": apt_state_stamp(), "specs": {"busybox-static": fields}}))
    empty = tmp_path / "bin"
    empty.mkdir()
    with monkeypatch.context() as patched:
        patched.setenv("PATH", str(empty))  # any apt process would fail with no_apt
        ref, got = AptSource(memo=memo).resolve("busybox-static")
    assert ref == DebRef("busybox-static", "1:1.35.0-4", "ab" * 32)
    assert got["Version"] == "1:1.35.0-4"
    memo.write_text(json.dumps({"stamp": "stale", "specs": {"busybox-static": fields}}))
    with monkeypatch.context() as patched, pytest.raises(ImageError) as caught:
        patched.setenv("PATH", str(empty))
        AptSource(memo=memo).resolve("busybox-static")
    assert caught.value.code == "no_apt"
    assert os.environ.get("PATH") != str(empty)
