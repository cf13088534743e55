"""The guest kernel: Debian's cloud kernel as an uncompressed vmlinux plus the modules the guest loads.

`linux-image-cloud-amd64` is a metapackage; its Depends names the real
`linux-image-<abi>-cloud-amd64` package, which is fetched (debs.py),
unpacked, and reduced to what a microVM needs: `vmlinux` (vmlinux.py) and
the virtio, vsock, ext4 and virtio-net modules with everything they depend
on, in load order. Debian ships no `modules.dep` (depmod runs at install
time), so dependencies come from each module's own `.modinfo` section when
`modules.dep` is absent. Modules the kernel has built in are skipped;
compressed modules (`.ko.xz`, `.ko.gz`, `.ko.zst`) are stored decompressed
so busybox `insmod` can load them.

The result lives in `<cache>/guest/kernels/<key>/`, keyed by the package's
sha256 and the module list, and appears there only by rename once complete.

Imports: images.cache, images.vm.debs, images.vm.vmlinux, errors and the standard library.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from roost.errors import ImageError
from roost.images.cache import ImageCache
from roost.images.vm.debs import AptSource, DebRef, first_dependency, unpack
from roost.images.vm.vmlinux import extract_vmlinux

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
# What the guest needs, by module name; dependencies are added automatically.
GUEST_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_mmio",
    "virtio_blk",
    "virtio_console",
    "virtio_rng",
    "crc16",
    "crc32c_generic",
    "mbcache",
    "jbd2",
    "ext4",
    "vsock",
    "vmw_vsock_virtio_transport_common",
    "vmw_vsock_virtio_transport",
    "failover",
    "net_failover",
    "virtio_net",
)
# Bumped whenever what this module produces from the same package changes.
FORMAT_VERSION = "1"
MANIFEST = "kernel.json"
_MODULE_SUFFIX = re.compile(r"\.ko(\.xz|\.gz|\.zst)?$")


@dataclass(frozen=True)
class KernelBundle:
    """A cached, extracted guest kernel."""

    directory: Path
    key: str
    release: str
    compression: str
    load_order: tuple[str, ...]
    package: str
    version: str
    sha256: str

    @property
    def vmlinux(self) -> Path:
        return self.directory / "vmlinux"

    def module(self, name: str) -> Path:
        return self.directory / "modules" / f"{name}.ko"


def module_name(filename: str) -> str:
    """`vmw_vsock_virtio_transport.ko.xz` -> `vmw_vsock_virtio_transport`; dashes read as underscores."""
    return _MODULE_SUFFIX.sub("", os.path.basename(filename)).replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, tuple[str, ...]]:
    """depmod's `modules.dep` (`path.ko: dep.ko dep.ko`) as module name -> dependency names."""
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        path, sep, deps = line.partition(":")
        if sep:
            table[module_name(path.strip())] = tuple(module_name(dep) for dep in deps.split())
    return table


def modinfo(elf: bytes) -> dict[str, list[str]]:
    """The `key=value` strings of a kernel module's `.modinfo` section (64-bit little-endian ELF).

    Raises:
        ValueError: not a 64-bit ELF or no .modinfo section.
    """
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", elf, shoff + index * shentsize) for index in range(shnum)]
    names_at = sections[shstrndx][4]
    for name_offset, _type, _flags, _addr, offset, size in sections:
        start = names_at + name_offset
        if elf[start : elf.index(b"\0", start)] == b".modinfo":
            fields: dict[str, list[str]] = {}
            for entry in elf[offset : offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    fields.setdefault(key, []).append(value)
            return fields
    raise ValueError("no .modinfo section")


def read_module(path: Path) -> bytes:
    """A module file's ELF bytes, decompressed if it is .ko.xz, .ko.gz or .ko.zst.

    Raises:
        ImageError: module_unreadable.
    """
    data = path.read_bytes()
    try:
        if path.name.endswith(".xz"):
            return lzma.decompress(data)
        if path.name.endswith(".gz"):
            return gzip.decompress(data)
        if path.name.endswith(".zst"):
            result = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True)
            return result.stdout
    except (OSError, lzma.LZMAError, subprocess.CalledProcessError) as exc:
        raise ImageError(f"cannot decompress {path.name}: {exc}", code="module_unreadable") from None
    return data


def load_order(
    wanted: Iterable[str], depends: Callable[[str], tuple[str, ...]], builtin: Callable[[str], bool]
) -> list[str]:
    """Every module `wanted` needs, dependencies first, built-in ones left out; ties keep `wanted`'s order.

    `depends(name)` raises KeyError for a module that does not exist.

    Raises:
        ImageError: module_missing (neither a module nor built in), module_cycle.
    """
    order: list[str] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done or builtin(name):
            return
        if name in visiting:
            raise ImageError(
                f"modules depend on each other in a cycle: {' -> '.join([*visiting, name])}", code="module_cycle"
            )
        visiting.append(name)
        try:
            deps = depends(name)
        except KeyError:
            needed_by = f" (needed by {visiting[-2]})" if len(visiting) > 1 else ""
            raise ImageError(
                f"the guest kernel has no module {name!r}{needed_by}, and it is not built in",
                code="module_missing",
                hint="the kernel package changed its configuration; update GUEST_MODULES",
            ) from None
        for dep in deps:
            visit(dep)
        visiting.pop()
        done.add(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


class ModuleTree:
    """One kernel release's `lib/modules/<release>/` as unpacked from its package."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = {module_name(path.name): path for path in root.rglob("*.ko*") if _MODULE_SUFFIX.search(path.name)}
        builtin = root / "modules.builtin"
        self._builtin = (
            {module_name(line.strip()) for line in builtin.read_text().splitlines() if line.strip()}
            if builtin.is_file()
            else set()
        )
        dep_file = root / "modules.dep"
        self._dep = parse_modules_dep(dep_file.read_text()) if dep_file.is_file() else None

    def is_builtin(self, name: str) -> bool:
        return name in self._builtin and name not in self.files

    def depends(self, name: str) -> tuple[str, ...]:
        """The modules `name` needs loaded first.

        Raises:
            KeyError: no such module file.
        """
        path = self.files[name]
        if self._dep is not None and name in self._dep:
            return self._dep[name]
        try:
            fields = modinfo(read_module(path))
        except ValueError as exc:
            raise ImageError(f"cannot read {path.name}: {exc}", code="module_unreadable") from None
        return tuple(dep for value in fields.get("depends", []) for dep in value.split(",") if dep)


def find_kernel_files(unpacked: Path) -> tuple[Path, Path]:
    """(boot/vmlinuz-*, lib/modules/<release>) in an unpacked kernel package.

    Raises:
        ImageError: kernel_package_unusable.
    """
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    trees = [
        p for base in ("lib/modules", "usr/lib/modules") for p in sorted((unpacked / base).glob("*")) if p.is_dir()
    ]
    if not images or not trees:
        raise ImageError(
            "the kernel package has no boot/vmlinuz-* or lib/modules/<release>",
            code="kernel_package_unusable",
        )
    return images[0], trees[0]


def resolve_kernel(apt: AptSource) -> DebRef:
    """The real kernel package behind the cloud metapackage, at the version apt would install.

    Raises:
        ImageError: package_unavailable, guest_kernel_unavailable.
    """
    meta, fields = apt.resolve(KERNEL_METAPACKAGE)
    package, version = first_dependency(fields.get("Depends", ""))
    if not package.startswith("linux-image-"):
        raise ImageError(
            f"{KERNEL_METAPACKAGE} {meta.version} depends on {package!r}, not a kernel image",
            code="guest_kernel_unavailable",
        )
    ref, _ = apt.resolve(f"{package}={version}" if version else package)
    return ref


def bundle_key(ref: DebRef, modules: Iterable[str] = GUEST_MODULES) -> str:
    text = f"{FORMAT_VERSION}\n{ref.package}\n{ref.version}\n{ref.sha256}\n{','.join(modules)}\n"
    return "sha256-" + hashlib.sha256(text.encode()).hexdigest()


def _load(directory: Path) -> KernelBundle | None:
    try:
        data = json.loads((directory / MANIFEST).read_text())
        return KernelBundle(
            directory=directory,
            key=data["key"],
            release=data["release"],
            compression=data["compression"],
            load_order=tuple(data["load_order"]),
            package=data["package"],
            version=data["version"],
            sha256=data["sha256"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_kernel(cache: ImageCache, apt: AptSource, progress: Callable[[str], None] | None = None) -> KernelBundle:
    """The extracted guest kernel for the cloud kernel apt offers now, built into the cache if missing.

    Raises:
        ImageError: package_unavailable, download_failed, digest_mismatch, vmlinux_not_found,
            module_missing, kernel_package_unusable.
    """
    ref = resolve_kernel(apt)
    key = bundle_key(ref)
    final = cache.root / "guest" / "kernels" / key
    cached = _load(final)
    if cached is not None:
        return cached
    if progress:
        progress(f"fetching {ref.package} {ref.version}")
    deb = apt.fetch(ref, cache.root / "guest" / "debs")
    with cache.staging("kernel") as staged:
        if progress:
            progress("extracting vmlinux and modules")
        unpacked = staged / "unpacked"
        unpack(deb.path, unpacked)
        image, tree_root = find_kernel_files(unpacked)
        compression, vmlinux = extract_vmlinux(image.read_bytes())
        bundle_dir = staged / "bundle"
        (bundle_dir / "modules").mkdir(parents=True)
        (bundle_dir / "vmlinux").write_bytes(vmlinux)
        tree = ModuleTree(tree_root)
        order = load_order(GUEST_MODULES, tree.depends, tree.is_builtin)
        for name in order:
            (bundle_dir / "modules" / f"{name}.ko").write_bytes(read_module(tree.files[name]))
        manifest = {
            "key": key,
            "release": tree_root.name,
            "compression": compression,
            "load_order": order,
            "builtin": sorted(name for name in GUEST_MODULES if tree.is_builtin(name)),
            "package": ref.package,
            "version": ref.version,
            "sha256": ref.sha256,
        }
        (bundle_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            os.rename(bundle_dir, final)
        shutil.rmtree(unpacked, ignore_errors=True)
    loaded = _load(final)
    if loaded is None:
        raise ImageError(f"the kernel bundle at {final} is unreadable", code="image_incomplete")
    return loaded
