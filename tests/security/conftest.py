"""Security regression tests: attacks from inside a workspace, written to be harmless when they fail.

The backend fixtures are the contract suite's (one run per backend this
machine can run), imported rather than copied.
"""

from __future__ import annotations

from contract.conftest import backend, roost, shared_images, workspace

__all__ = ["backend", "roost", "shared_images", "workspace"]
