"""How a guest's PID 1 and agent start: on the image's own python3, or on roost's python bundle.

An image with a usable python3 (images.interpreter) boots as it always has: the initramfs's
`switch_root` execs `/sbin/roost-init`, a `#!<its python3> -I` launcher, and init starts the
agent on `sys.executable`. An image without one (busybox, distroless, musl...) gets the bundle
on its disk at `/opt/roost/python`, and nothing of the image is needed to start either: the
initramfs execs the bundle's own loader on the bundle's python3 with `-I /sbin/roost-init`,
and the launcher hands init that same command prefix for the agent (`sys.executable` would
name a program only the bundle's loader can start). The bundle's cache key goes into the guest
image's key, so a new host python makes a new guest image.

Imports: errors, images.cache, images.interpreter, images.python_bundle, images.vm.initramfs
and the standard library.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from roost.errors import ImageError
from roost.images.cache import ImageCache
from roost.images.interpreter import PYTHON_CANDIDATES
from roost.images.python_bundle import BUNDLE_INTERPRETER, BUNDLE_MARKER, bundle_command, ensure_bundle
from roost.images.vm.initramfs import ROOT_INIT

__all__ = ["GuestLaunch", "bundle_launcher", "guest_launch", "own_python_launcher", "python_tag"]

_LAUNCHER_BODY = """# roost's PID 1 (roost.guest.init); the code lives under /opt/roost.
import sys

sys.path.insert(0, "/opt/roost")
from roost.guest.init import main

sys.exit(main({args}))
"""
_VERSION_RE = re.compile(r"python3\.(\d+)")


def own_python_launcher(python: str) -> str:
    """/sbin/roost-init for an image whose own `python` runs init (and, as sys.executable, the agent)."""
    return f"#!{python} -I\n" + _LAUNCHER_BODY.format(args="")


def bundle_launcher(prefix: tuple[str, ...]) -> str:
    """/sbin/roost-init for an image without python3: run by the initramfs through the bundle's
    loader (`prefix -I /sbin/roost-init`), it gives init the same prefix to start the agent."""
    return (
        "# Not run by its own: the initramfs starts it as\n"
        f"# {' '.join(prefix)} -I {ROOT_INIT}\n" + _LAUNCHER_BODY.format(args=f"python={prefix!r}")
    )


@dataclass(frozen=True)
class GuestLaunch:
    """What a guest disk and initramfs need to start roost's init and agent on `interpreter`."""

    interpreter: str
    # /sbin/roost-init's text, and the argv the initramfs's switch_root execs.
    launcher: str
    root_init: tuple[str, ...]
    # The bytecode tag (`cpython-311`) of the python that runs the guest code, when known.
    bytecode_tag: str | None
    # The host directory of roost's python bundle, copied to /opt/roost/python (None: the image's own).
    bundle: Path | None = None

    def key_parts(self) -> tuple[str, ...]:
        """What the guest image's key adds for this launch (nothing for an image's own python3)."""
        return () if self.bundle is None else (f"bundle:{self.bundle.name}",)


def python_tag(rootfs: Path, python: str) -> str | None:
    """The bytecode tag of the image's `python` (`/usr/bin/python3`), from its link target."""
    try:
        target = os.readlink(rootfs / python.lstrip("/"))
    except OSError:
        return None
    match = _VERSION_RE.fullmatch(os.path.basename(target))
    return f"cpython-3{match.group(1)}" if match else None


def _bundle_tag(bundle: Path) -> str | None:
    try:
        version = json.loads((bundle / BUNDLE_MARKER).read_text())["python"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return "cpython-" + str(version).replace(".", "") if isinstance(version, str) else None


def guest_launch(cache: ImageCache, env: str, interpreter: str, rootfs: Path) -> GuestLaunch:
    """How the guest of `env` (its rootfs at `rootfs`) starts, given the python3 its agent runs on.

    Raises:
        ImageError: bundle_failed when the bundle cannot be built; image_unsupported for an
            interpreter roost does not know how to start.
    """
    if interpreter == BUNDLE_INTERPRETER:
        bundle = ensure_bundle(cache)
        prefix = tuple(bundle_command())
        return GuestLaunch(
            interpreter, bundle_launcher(prefix), (*prefix, "-I", ROOT_INIT), _bundle_tag(bundle), bundle
        )
    if interpreter in PYTHON_CANDIDATES:
        return GuestLaunch(interpreter, own_python_launcher(interpreter), (ROOT_INIT,), python_tag(rootfs, interpreter))
    raise ImageError(
        f"{env}'s agent runs on {interpreter}, which roost's guest init cannot start",
        code="image_unsupported",
        hint="run it on the sandbox backend",
    )
