"""Security and fault regression tests from issue 11, each harmless when it fails.

They run once per backend this machine can run, with the contract suite's
fixtures (reused, not copied): `backend`, `roost_home`, `roost` (on that
home; its workspaces are all deleted at teardown) and `workspace`; and the e2e
suite's CLI runner, pointed at the same home and backend (`cli`).
"""

from __future__ import annotations

import pytest

from contract.conftest import backend, roost, roost_home, shared_images, workspace
from e2e.conftest import RoostCli
from roost import Roost

__all__ = ["backend", "cli", "roost", "roost_home", "shared_images", "workspace"]


@pytest.fixture
def cli(roost: Roost, backend: str) -> RoostCli:
    """`python -m roost` as a separate process on the test's home and backend."""
    runner = RoostCli(roost.home)
    runner.env["ROOST_BACKEND"] = backend
    return runner
