"""Backends and how one is chosen: `--backend`, `$ROOST_BACKEND`, else the best available.

Preference: firecracker (when KVM can boot a guest), then sandbox (when
bubblewrap works), then mock, with a warning because mock isolates nothing.

Imports: backends.* (the built-in backends lazily), errors, models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roost.backends.base import (
    AgentPython,
    Availability,
    Backend,
    CreateSpec,
    GuestBootImage,
    ImageKind,
    OfflineDisk,
    StoreAccess,
)
from roost.errors import BackendError, InvalidArgument, RoostError, operator_remedy
from roost.models import Protection

__all__ = [
    "BACKEND_NAMES",
    "AgentPython",
    "Availability",
    "Backend",
    "CreateSpec",
    "GuestBootImage",
    "ImageKind",
    "OfflineDisk",
    "Protection",
    "StoreAccess",
    "destroy_leftovers",
    "get_backend",
    "select_backend",
]

# In order of preference.
BACKEND_NAMES: tuple[str, ...] = ("firecracker", "sandbox", "mock")
PREFERENCE: tuple[str, ...] = ("firecracker", "sandbox", "mock")


def get_backend(name: str, home: Path | None = None) -> Backend[Any]:
    """The backend called `name`, for the roost state directory `home`.

    Raises:
        InvalidArgument: unknown_backend.
    """
    if name == "mock":
        from roost.backends.mock import MockBackend

        return MockBackend()
    if name == "sandbox":
        from roost.backends.sandbox import SandboxBackend

        return SandboxBackend()
    if name == "firecracker":
        from roost.backends.firecracker.backend import FirecrackerBackend

        return FirecrackerBackend(home=home)
    raise InvalidArgument(
        f"unknown backend {name!r}",
        code="unknown_backend",
        hint=f"choose one of: {', '.join(BACKEND_NAMES)}",
    )


def select_backend(requested: str | None, home: Path | None = None) -> tuple[Backend[Any], str | None]:
    """The backend to use and, when it is a fallback that isolates nothing, a warning.

    Raises:
        InvalidArgument: unknown_backend.
        BackendError: backend_unavailable when the requested one cannot run here.
    """
    if requested:
        backend = get_backend(requested, home)
        check = backend.availability()
        if not check.available:
            raise BackendError(
                f"backend {requested!r} is not available: {check.reason}",
                code="backend_unavailable",
                remedy=operator_remedy("see what this host can run", "doctor"),
            )
        return backend, None
    for name in PREFERENCE:
        backend = get_backend(name, home)
        check = backend.availability()
        if check.available:
            warning = None if check.isolated else f"using the {name} backend: workspaces are NOT isolated"
            return backend, warning
    raise BackendError(
        "no backend can run on this host",
        code="backend_unavailable",
        remedy=operator_remedy("see what this host lacks", "doctor"),
    )


def destroy_leftovers(ws_dir: Path, ws_id: str, home: Path | None = None) -> None:
    """Stop what any backend may have left of workspace `ws_id` whose record is lost (its
    processes, a sandbox's cgroups, a VMM): each backend finds its own by the workspace's id."""
    for name in BACKEND_NAMES:
        try:
            get_backend(name, home).destroy(ws_dir, ws_id, None)
        except RoostError:
            continue  # one backend's trouble must not keep the others from cleaning up
