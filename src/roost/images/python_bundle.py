"""The self-contained python3 roost brings to images that have none it can use.

Built once per host interpreter from the python running roost: its binary, its own dynamic
loader (PT_INTERP) and every shared library it and its extension modules need (found with
`ldd`), plus the standard library minus tests, IDLE, tkinter and ensurepip. It depends on
nothing in the image, not even its libc: it starts as

    /opt/roost/python/lib/ld-linux-x86-64.so.2 --library-path /opt/roost/python/lib \
        /opt/roost/python/bin/python3 -I ...

and finds its standard library from its own path. Bundles live in the image cache under
`bundles/<key>/` (the key hashes the interpreter's identity), appear there only by a rename
once complete, and are bound read-only at `/opt/roost/python` (a microVM's guest disk carries a
read-only copy there instead: images.vm.launch), which no PATH names.

Imports: errors, images.cache, images.elf and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from roost.errors import ImageError
from roost.images.cache import ImageCache
from roost.images.elf import read_elf

__all__ = ["BUNDLE_INTERPRETER", "BUNDLE_MOUNT", "bundle_command", "ensure_bundle"]

BUNDLE_MOUNT = "/opt/roost/python"
BUNDLE_INTERPRETER = f"{BUNDLE_MOUNT}/bin/python3"
LOADER = "ld-linux-x86-64.so.2"
BUNDLE_MARKER = ".roost-bundle.json"
# Bumped when the bundle's layout or contents change, so old bundles are not reused.
BUNDLE_FORMAT = 1
_SKIPPED_STDLIB = {
    *("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"),
    *("site-packages", "distutils", "unittest", "pydoc_data"),
}
_SKIPPED_EXTENSIONS = ("_tkinter", "_test", "xx", "_ctypes_test")
_LDD_TIMEOUT = 30.0


def bundle_command(bundle_mount: str = BUNDLE_MOUNT) -> list[str]:
    """The argv prefix that starts the bundle's python3 through its own loader."""
    return [f"{bundle_mount}/lib/{LOADER}", "--library-path", f"{bundle_mount}/lib", f"{bundle_mount}/bin/python3"]


@dataclass(frozen=True)
class HostPython:
    """Where the interpreter running roost keeps its binary, standard library and extensions."""

    executable: Path
    stdlib: Path
    version: str

    @classmethod
    def current(cls) -> HostPython:
        base = getattr(sys, "_base_executable", None) or sys.executable
        return cls(
            executable=Path(os.path.realpath(base)),
            stdlib=Path(sysconfig.get_paths()["stdlib"]),
            version=f"{sys.version_info.major}.{sys.version_info.minor}",
        )

    def key(self) -> str:
        st = self.executable.stat()
        identity = f"{BUNDLE_FORMAT}\0{self.executable}\0{st.st_size}\0{st.st_mtime_ns}\0{self.stdlib}\0{sys.version}"
        return f"python{self.version}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def _failed(message: str) -> ImageError:
    return ImageError(
        message,
        code="bundle_failed",
        hint="roost builds its python bundle from the python it runs on; check that `ldd` works and the disk has room",
    )


def ensure_bundle(cache: ImageCache, host: HostPython | None = None) -> Path:
    """The host path of the python bundle, built into the cache on first use.

    Raises:
        ImageError: bundle_failed when the host's python cannot be bundled.
    """
    host = host or HostPython.current()
    try:
        key = host.key()
    except OSError as exc:
        raise _failed(f"cannot read the host's python {host.executable}: {exc.strerror}") from None
    final = cache.root / "bundles" / key
    if (final / BUNDLE_MARKER).is_file():
        return final
    with cache.lock(f"bundle-{key}"):
        if (final / BUNDLE_MARKER).is_file():
            return final
        with cache.staging("bundle") as staged:
            tree = staged / "python"
            try:
                _build(host, tree)
                (tree / BUNDLE_MARKER).write_text(json.dumps({"python": host.version, "from": str(host.executable)}))
                final.parent.mkdir(mode=0o700, exist_ok=True)
                if final.exists():
                    shutil.rmtree(final)  # a build that died after its rename began
                os.rename(tree, final)
            except OSError as exc:
                raise _failed(f"building the python bundle failed: {exc.strerror or exc}") from None
    return final


def _build(host: HostPython, tree: Path) -> None:
    (tree / "bin").mkdir(parents=True)
    (tree / "lib").mkdir()
    shutil.copy2(host.executable, tree / "bin" / "python3")
    stdlib = tree / "lib" / f"python{host.version}"
    shutil.copytree(host.stdlib, stdlib, symlinks=True, ignore=_stdlib_ignore(host.stdlib))
    extensions = sorted((stdlib / "lib-dynload").glob("*.so")) if (stdlib / "lib-dynload").is_dir() else []
    elf = read_elf(host.executable)
    if elf is None or elf.interpreter is None:
        raise _failed(f"{host.executable} is not a dynamically linked ELF program")
    shutil.copy2(os.path.realpath(elf.interpreter), tree / "lib" / LOADER)
    for name, library in _needed_libraries([host.executable, *extensions]).items():
        if name != LOADER:
            shutil.copy2(library, tree / "lib" / name)
    _make_readable(tree)


def _stdlib_ignore(stdlib: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        if Path(directory) == stdlib:
            skipped |= {n for n in names if n in _SKIPPED_STDLIB or n.startswith("config-")}
        if os.path.basename(directory) == "lib-dynload":
            skipped |= {n for n in names if n.startswith(_SKIPPED_EXTENSIONS)}
        return skipped

    return ignore


def _needed_libraries(binaries: list[Path]) -> dict[str, Path]:
    """Every shared library `binaries` load (DT_NEEDED, transitively), by soname, resolved as the
    host's loader resolves them (`ldd`) to the file itself."""
    try:
        done = subprocess.run(
            ["ldd", *map(str, binaries)], capture_output=True, text=True, timeout=_LDD_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _failed(f"ldd failed: {exc}") from None
    found: dict[str, Path] = {}
    for line in done.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if not arrow:
            continue
        target = rest.split(" (", 1)[0].strip()
        if target == "not found":
            raise _failed(f"the host's python needs {name}, which the host's loader cannot find")
        if target.startswith("/"):
            found[name] = Path(os.path.realpath(target))
    return found


def _make_readable(tree: Path) -> None:
    """World-readable (and traversable): the sandbox's root is an unprivileged id that owns none of it."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, 0o755 if mode & 0o111 else 0o644)
