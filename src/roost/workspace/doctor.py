"""`roost doctor`: which backend this host gets, and exactly why.

Imports: backends, models, workspace.runtime, the standard library.
"""

from __future__ import annotations

import os
import shutil
import sys

from roost import __version__
from roost.backends import BACKEND_NAMES, get_backend, select_backend
from roost.errors import RoostError
from roost.models import DoctorCheck, DoctorReport
from roost.workspace.runtime import Runtime


def _home_check(rt: Runtime) -> DoctorCheck:
    try:
        rt.store.ensure()
    except OSError as exc:
        return DoctorCheck("state_dir", False, f"cannot create the state directory: {exc.strerror}")
    mode = rt.home.stat().st_mode & 0o777
    writable = os.access(rt.home, os.W_OK)
    ok = writable and mode == 0o700
    return DoctorCheck("state_dir", ok, f"mode {mode:o}, {'writable' if writable else 'NOT writable'}")


def _host_checks(rt: Runtime) -> list[DoctorCheck]:
    python_ok = sys.version_info >= (3, 11)
    checks = [
        DoctorCheck("python", python_ok, sys.version.split()[0]),
        _home_check(rt),
        DoctorCheck(
            "kvm", os.path.exists("/dev/kvm"), "/dev/kvm present" if os.path.exists("/dev/kvm") else "/dev/kvm missing"
        ),
    ]
    bwrap = shutil.which("bwrap")
    checks.append(DoctorCheck("bubblewrap", bwrap is not None, bwrap or "bwrap not on PATH"))
    return checks


def report(rt: Runtime) -> DoctorReport:
    backends = {}
    for name in BACKEND_NAMES:
        check = get_backend(name).availability()
        backends[name] = DoctorCheck(name, check.available, check.reason)
    try:
        chosen, warning = select_backend(rt.requested_backend)
        default = chosen.name
        if warning is None and not chosen.isolated:
            # Chosen explicitly (--backend, $ROOST_BACKEND) still isolates nothing; doctor must say so.
            warning = f"the {chosen.name} backend is selected: workspaces are NOT isolated"
    except RoostError as exc:
        default, warning = "none", exc.message
    checks = _host_checks(rt)
    if warning:
        checks.append(DoctorCheck("isolation", False, warning))
    return DoctorReport(
        version=__version__,
        home=str(rt.home),
        default_backend=default,
        backends=backends,
        checks=tuple(checks),
    )
