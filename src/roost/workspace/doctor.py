"""`roost doctor`: which backend this host gets, and exactly why.

Imports: backends, images (cache and sources), models, network.attachment (network_available), config, userns,
workspace.engine.
"""

from __future__ import annotations

import os
import shutil
import sys

from roost._version import __version__
from roost.backends import BACKEND_NAMES, get_backend
from roost.backends.kvm import probe_kvm
from roost.config import images_dir
from roost.errors import RoostError
from roost.images.cache import ImageCache
from roost.images.manager import configured_sources
from roost.models import DoctorCheck, DoctorReport
from roost.userns import requirements
from roost.workspace.engine import Engine


def _home_check(engine: Engine) -> DoctorCheck:
    try:
        engine.store.ensure()
    except RoostError as exc:
        return DoctorCheck("state_dir", False, exc.message)
    mode = engine.home.stat().st_mode & 0o777
    writable = os.access(engine.home, os.W_OK)
    ok = writable and mode == 0o700
    return DoctorCheck("state_dir", ok, f"mode {mode:o}, {'writable' if writable else 'NOT writable'}")


def _images_check(engine: Engine) -> DoctorCheck:
    try:
        sources = ", ".join(configured_sources())
    except RoostError as exc:
        return DoctorCheck("images", False, exc.message)
    cached = [image.env for image in ImageCache(images_dir(engine.home)).images()]
    tool = shutil.which("mmdebstrap") or shutil.which("debootstrap")
    detail = f"cached: {', '.join(cached) or 'none'}; sources: {sources}; builder: {tool or 'none'}"
    return DoctorCheck("images", bool(cached) or tool is not None, detail)


def _reflink_check(engine: Engine) -> DoctorCheck:
    """Whether a firecracker workspace's disk is a copy-on-write clone of its image's or a full copy."""
    from roost.backends.firecracker.vm import supports_reflink

    cache = images_dir(engine.home)
    where = cache if cache.is_dir() else engine.home
    if supports_reflink(where):
        return DoctorCheck("reflink", True, f"{where}: a firecracker workspace's disk shares its image's blocks")
    return DoctorCheck(
        "reflink",
        False,
        f"{where} has no reflink (e.g. ext4): each firecracker create copies the guest disk (sparse); "
        "btrfs or xfs there makes it instant",
    )


def _fork_check() -> DoctorCheck:
    """How `workspace fork` copies a workspace here: its stored contents shared or streamed, and no memory fork."""
    return DoctorCheck(
        "fork",
        True,
        "filesystem fork: stored contents shared by hard link on mock, streamed to each child (and checked "
        "there) on the sandbox and firecracker; memory fork: not offered, children boot as new workspaces",
    )


def _host_checks(engine: Engine) -> list[DoctorCheck]:
    kvm = probe_kvm()
    bwrap = shutil.which("bwrap")
    return [
        DoctorCheck("python", sys.version_info >= (3, 11), sys.version.split()[0]),
        _home_check(engine),
        DoctorCheck("kvm", kvm.can_boot_guests, f"{kvm.kind}: {kvm.detail}"),
        DoctorCheck("bubblewrap", bwrap is not None, bwrap or "bwrap not on PATH (apt-get install bubblewrap)"),
        _images_check(engine),
        _reflink_check(engine),
        _fork_check(),
        _network_check(),
    ]


def _network_check() -> DoctorCheck:
    from roost.network.attachment import network_available  # only doctor asks: no command pays for it

    return DoctorCheck("network", *network_available())


def _unprivileged_checks() -> list[DoctorCheck]:
    """As a normal user: what sandboxes and image builds need for a user namespace over subordinate ids."""
    if os.geteuid() == 0:
        return []  # root writes any id map itself
    return [
        DoctorCheck(r.name, r.ok, r.detail if r.fix is None else f"{r.detail}; fix: {r.fix}") for r in requirements()
    ]


def report(engine: Engine) -> DoctorReport:
    backends: dict[str, DoctorCheck] = {}
    for name in BACKEND_NAMES:
        # Firecracker's check names its binary (this home's `runtime install` too), version and KVM verdict.
        backend = get_backend(name, engine.home)
        check = backend.availability()
        backends[name] = DoctorCheck(name, check.available, check.reason)
    try:
        chosen, warning = engine.select_backend()
        default = chosen.name
        if warning is None and not chosen.isolated:
            # Chosen explicitly (--backend, $ROOST_BACKEND) still isolates nothing; doctor must say so.
            warning = f"the {chosen.name} backend is selected: workspaces are NOT isolated"
    except RoostError as exc:
        default, warning = "none", exc.message
    checks = _host_checks(engine) + _unprivileged_checks()
    if warning:
        checks.append(DoctorCheck("isolation", False, warning))
    protections = {
        name: get_backend(name, engine.home).protections(None) for name, check in backends.items() if check.ok
    }
    return DoctorReport(
        version=__version__,
        home=str(engine.home),
        default_backend=default,
        backends=backends,
        checks=tuple(checks),
        protections=protections,
    )
