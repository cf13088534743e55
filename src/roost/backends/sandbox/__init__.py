"""The sandbox backend (bubblewrap), its launcher and its protections."""

from roost.backends.sandbox.backend import SandboxBackend

__all__ = ["SandboxBackend"]
