"""Security regression tests: each attack from issue 11, written to probe, never to exploit.

A test here must be harmless when it fails: it opens for append without
writing, uses unique names, cleans up after itself, writes only under tmp
dirs it made, and kills only processes it started. The backend fixtures
come from the contract suite, so every test that takes `roost` or
`workspace` runs on each backend this machine has (mock and sandbox here).
"""

from __future__ import annotations

from contract.conftest import backend, roost, shared_images, workspace

__all__ = ["backend", "roost", "shared_images", "workspace"]
