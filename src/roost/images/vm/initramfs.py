"""The guest initramfs: busybox, the kernel modules and an `/init` that mounts the root disk and hands over.

Written here as a gzip'd `newc` cpio archive (the format the kernel
unpacks: a 110-byte ASCII header per entry, names and data padded to 4
bytes, a `TRAILER!!!` entry last), so building it needs no root, no cpio
program and no device nodes on the host; `/dev/console` is just a header.
The archive is deterministic: fixed inode numbers, owners and times.

`/init` mounts /proc, /sys and /dev, loads the modules in dependency order,
waits for the root disk (`roost.root=` on the kernel command line, default
`/dev/vda`), mounts it read-write as ext4, moves /dev over and
`switch_root`s to roost's init on it (`/sbin/roost-init`, or the command that starts it
through roost's python bundle: `init_script`), passing its arguments through. On
any failure it says why on the console and ends the VM the way roost's
init would (`roost.halt=`: reboot by default, which Firecracker exits on;
poweroff for QEMU's microvm) instead of hanging.

Imports: the standard library only.
"""

from __future__ import annotations

import gzip
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT_INIT = "/sbin/roost-init"
# What a word of the hand-over command may hold: nothing the shell would split, expand or run.
_PLAIN_WORD = re.compile(r"[\w./+=:,@-]+", re.ASCII)
DEFAULT_ROOT = "/dev/vda"
BUSYBOX_APPLETS = ("sh", "mount", "umount", "insmod", "switch_root", "sleep", "cat", "reboot", "poweroff", "mkdir")

_SCRIPT_TEMPLATE = f"""#!/bin/sh
# roost initramfs: load the guest's drivers, mount the root disk, hand over to roost's init.
PATH=/bin
export PATH
halt=reboot
serial=no
fail() {{
    echo "roost-initramfs: $*; ending the VM ($halt)" >/dev/console
    sleep 1
    "$halt" -f
}}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
root={DEFAULT_ROOT}
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        roost.root=*) root="${{arg#roost.root=}}" ;;
        roost.halt=poweroff) halt=poweroff ;;
        roost.agent=serial*) serial=yes ;;
    esac
done
while read -r module; do
    [ -n "$module" ] || continue
    # virtio-serial carries the agent under QEMU only; Firecracker has no such device.
    [ "$module" != virtio_console ] || [ "$serial" = yes ] || continue
    insmod "/lib/modules/$module.ko" || fail "cannot load module $module"
done </lib/modules/load-order
tries=0
while [ ! -b "$root" ]; do
    tries=$((tries + 1))
    [ "$tries" -le 3000 ] || fail "no root disk at $root"
    sleep 0.01
done
mount -t ext4 -o rw "$root" /newroot || fail "cannot mount $root"
[ -x "/newroot@PROGRAM@" ] || [ -L "/newroot@PROGRAM@" ] || fail "$root has no @PROGRAM@"
mount --move /dev /newroot/dev || fail "cannot move /dev"
umount /sys
umount /proc
exec switch_root /newroot @ROOT_INIT@ "$@"
"""


def init_script(root_init: Sequence[str] = (ROOT_INIT,)) -> str:
    """The initramfs's /init, handing over to `root_init` (argv words without spaces) on the root disk."""
    if not root_init or not all(_PLAIN_WORD.fullmatch(word) for word in root_init):
        raise ValueError(f"root_init words must be plain (letters, digits, ./_+=:,@-): {root_init!r}")
    return _SCRIPT_TEMPLATE.replace("@PROGRAM@", root_init[0]).replace("@ROOT_INIT@", " ".join(root_init))


INIT_SCRIPT = init_script()


def _align(length: int) -> bytes:
    return b"\0" * (-length % 4)


class CpioWriter:
    """An in-memory newc ("070701") cpio archive."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._next_inode = 1
        self._names: set[str] = set()
        self._finished = False

    def _entry(
        self, name: str, mode: int, data: bytes = b"", *, nlink: int = 1, rdev: tuple[int, int] = (0, 0)
    ) -> None:
        if self._finished:
            raise ValueError("the archive is finished")
        name = name.strip("/") or "."
        if name in self._names:
            raise ValueError(f"{name!r} is already in the archive")
        self._names.add(name)
        encoded = name.encode() + b"\0"
        fields = (
            self._next_inode,
            mode,
            0,  # uid
            0,  # gid
            nlink,
            0,  # mtime
            len(data),
            0,  # devmajor
            0,  # devminor
            rdev[0],
            rdev[1],
            len(encoded),
            0,  # check
        )
        self._next_inode += 1
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self._parts += [header, encoded, _align(len(header) + len(encoded)), data, _align(len(data))]

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def add_symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        """The archive bytes, ending with the TRAILER!!! entry."""
        if not self._finished:
            self._entry("TRAILER!!!", 0, nlink=1)
            self._finished = True
        return b"".join(self._parts)


def build_initramfs(busybox: Path, modules: Iterable[tuple[str, Path]], script: str = INIT_SCRIPT) -> bytes:
    """The gzip'd initramfs: busybox at /bin/busybox, modules at /lib/modules/<name>.ko, /init (`script`).

    `modules` is (name, path) in load order.
    """
    archive = CpioWriter()
    for directory in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        archive.add_dir(directory)
    archive.add_char_device("dev/console", 5, 1)
    archive.add_char_device("dev/null", 1, 3, 0o666)
    archive.add_file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in BUSYBOX_APPLETS:
        archive.add_symlink(f"bin/{applet}", "busybox")
    names = []
    for name, path in modules:
        archive.add_file(f"lib/modules/{name}.ko", path.read_bytes())
        names.append(name)
    archive.add_file("lib/modules/load-order", "".join(f"{name}\n" for name in names).encode())
    archive.add_file("init", script.encode(), 0o755)
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable with no program interpreter (so it runs without a libc on disk)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    pt_interp = 3
    for index in range(phnum):
        start = phoff + index * phentsize
        if int.from_bytes(data[start : start + 4], "little") == pt_interp:
            return False
    return True
