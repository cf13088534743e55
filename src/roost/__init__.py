"""roost: persistent, isolated Linux workspaces that coding agents inhabit across calls.

The SDK loads lazily so `roost --version` and the guest agent (which ships
this file) stay fast and standard-library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roost._version import __version__

__all__ = [
    "AgentError",
    "BackendError",
    "ConflictError",
    "InvalidArgument",
    "NotFound",
    "Readiness",
    "Roost",
    "RoostError",
    "Workspace",
    "__version__",
]

if TYPE_CHECKING:
    from roost.client import Readiness, Roost, Workspace
    from roost.errors import AgentError, BackendError, ConflictError, InvalidArgument, NotFound, RoostError


def __getattr__(name: str) -> Any:
    if name in ("Roost", "Workspace", "Readiness"):
        from roost import client

        return getattr(client, name)
    if name in __all__:
        from roost import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'roost' has no attribute {name!r}")
