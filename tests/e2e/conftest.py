"""The `roost` CLI as a user meets it: a separate process per call, with its own
state directory, the mock backend, and a deadline on every call so nothing hangs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from helpers import delete_all_workspaces
from roost.client import Roost

# This folder's helper modules (cli_helpers.py, mcp_helpers.py for the MCP tests, ui_server.py) are
# imported by name, like `helpers` (see tests/conftest.py): never from `conftest`, a name every suite has.
sys.path.insert(0, str(Path(__file__).parent))

from cli_helpers import RoostCli, delete_leftovers, make_seed
from ui_server import UiServer, running_ui


@pytest.fixture
def roost(tmp_path: Path) -> Iterator[RoostCli]:
    """A CLI with a fresh, empty state directory for this test alone."""
    cli = RoostCli(tmp_path / "home")
    yield cli
    delete_leftovers(cli)


@pytest.fixture(scope="module")
def module_roost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoostCli]:
    """A CLI whose state directory the tests of one module share."""
    cli = RoostCli(tmp_path_factory.mktemp("module") / "home")
    yield cli
    delete_leftovers(cli)


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory to seed workspaces from (see `make_seed`)."""
    return make_seed(tmp_path_factory.mktemp("seed") / "project")


@pytest.fixture(scope="module")
def shared_workspace(module_roost: RoostCli, seed_dir: Path) -> Iterator[str]:
    """One seeded workspace for the tests of a module that do not get in each other's way."""
    ws_id = module_roost.create("--seed-path", str(seed_dir))
    yield ws_id
    module_roost("workspace", "delete", ws_id, "--force")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def mcp_home(tmp_path: Path) -> Iterator[Path]:
    """A fresh `$ROOST_HOME` for an MCP server; what a failed test leaves in it is deleted after."""
    home = tmp_path / "home"
    yield home
    # A failed test may leave workspaces (and their agents, shells and services) behind.
    with Roost(home=home, backend="mock") as roost:
        delete_all_workspaces(roost)


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    """The file an MCP server's stderr goes to."""
    with open(tmp_path / "server.log", "w+") as fh:
        yield fh


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A `roost ui` server on a state directory of its own, for the tests of one module."""
    with running_ui(tmp_path_factory) as server:
        yield server
