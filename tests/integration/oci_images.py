"""Test images the tests build themselves and serve from the local registry: a Debian rootfs with
python3, a busybox-static tree with no python3 and no libc, and the same with musl as its libc.

Imports: roost.images (layers, registry client) and the standard library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from roost.images.layers import layer_from_directory
from roost.images.oci import RegistryClient

BUSYBOX = Path("/bin/busybox")
MUSL_LOADER = Path("/lib/ld-musl-x86_64.so.1")


def push_tree(registry: str, root: Path, scratch: Path, *, repository: str, tag: str, **config: object) -> str:
    """Publish the tree at `root` as a one-layer image `registry/repository:tag`; return its manifest digest."""
    layer = scratch / f"layer-{uuid.uuid4().hex[:8]}.tar.gz"
    digests = layer_from_directory(root, layer)
    try:
        with RegistryClient(registry) as client:
            return client.push(repository, tag, layer, digests, {"architecture": "amd64", "os": "linux", **config})
    finally:
        layer.unlink(missing_ok=True)


def busybox_tree(base: Path) -> Path:
    """/bin/busybox (static) and a link per applet, /etc/passwd and /tmp: no python3, no libc; each
    tree is unique (/etc/image-id)."""
    root = base / f"busybox-{uuid.uuid4().hex[:8]}"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    (root / "usr").mkdir()
    os.symlink("../bin", root / "usr" / "bin")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    # Unique content, so no two images share a layer blob (a test corrupts one in the registry's storage).
    (root / "etc" / "image-id").write_text(uuid.uuid4().hex)
    (root / "root").mkdir(mode=0o700)
    (root / "tmp").mkdir(mode=0o1777)
    return root


def musl_tree(base: Path) -> Path:
    """The busybox tree with musl's loader (which is its libc) in /lib, and no glibc anywhere."""
    root = busybox_tree(base)
    (root / "lib").mkdir()
    shutil.copy2(os.path.realpath(MUSL_LOADER), root / "lib" / MUSL_LOADER.name)
    (root / "etc" / "os-release").write_text("ID=musl-test\n")
    return root
