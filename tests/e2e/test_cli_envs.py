"""`roost env ...` and a sandboxed `roost run` as a user types them: separate processes, the
shared image cache through `$ROOST_IMAGES`, one JSON document with --json and no progress noise."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import SHARED_IMAGES
from roost.backends import get_backend
from roost.config import IMAGES_ENV
from roost.images.cache import ImageCache
from roost.images.freshness import current_image

if TYPE_CHECKING:
    from cli_helpers import RoostCli

SANDBOX = get_backend("sandbox").availability()

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(roost: RoostCli) -> RoostCli:
    """The CLI with a fresh home whose image cache is the shared one, holding a built debian:12."""
    if current_image(ImageCache(SHARED_IMAGES), "debian:12") is None:
        pytest.skip(f"debian:12 is not in the shared image cache {SHARED_IMAGES}; run `make images`")
    roost.env[IMAGES_ENV] = str(SHARED_IMAGES)
    for name in ("ROOST_REGISTRY", "ROOST_IMAGE_SOURCES"):
        roost.env.pop(name, None)
    return roost


def test_env_list_shows_debian_12_cached(cli: RoostCli) -> None:
    envs = {env["name"]: env for env in cli.json("env", "list")["envs"]}
    assert {"debian:12", "debian:12-base", "debian:12-build", "debian:12-python", "debian:12-node"} <= set(envs)
    assert envs["debian:12"]["cached"] is True
    assert envs["debian:12"]["key"].startswith("sha256-")
    assert {"git", "python3-pip", "python3-venv", "make"} <= set(envs["debian:12"]["packages"])
    assert envs["debian:12"]["stale"] is False


def test_env_inspect_describes_the_cached_image(cli: RoostCli) -> None:
    info = cli.json("env", "inspect", "debian:12")
    assert info["name"] == "debian:12"
    assert info["cached"] is True
    assert info["source"] in ("build", "registry")
    assert info["size_bytes"] > 0
    assert info["created_at"]


def test_env_build_if_missing_returns_the_cached_image_without_building(cli: RoostCli) -> None:
    before = cli.json("env", "inspect", "debian:12")
    started = time.monotonic()
    proc = cli("env", "build", "debian:12", "--if-missing", "--json", check_rc=0)
    assert time.monotonic() - started < 10, "a cached env must not be built again"
    after = cli.json("env", "inspect", "debian:12")
    assert proc.stderr == ""
    assert after["key"] == before["key"]
    assert after["created_at"] == before["created_at"]


def test_inspecting_an_unknown_env_is_env_not_found(cli: RoostCli) -> None:
    error = cli.error(cli("env", "inspect", "Nope", "--json"), 3, "env_not_found")
    assert "debian:12" in error["hint"]


def test_pulling_from_an_unreachable_registry_exits_6_with_a_hint(cli: RoostCli) -> None:
    proc = cli("env", "pull", "debian:12", "--registry", "127.0.0.1:1/x", "--json")
    cli.error(proc, 6, "registry_unreachable")
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, "with --json, stderr holds the error document only"


@pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}")
def test_run_in_a_sandbox_prints_the_git_version(cli: RoostCli) -> None:
    proc = cli("run", "debian:12", "--backend", "sandbox", "--", "git", "--version", check_rc=0)
    assert proc.stdout.startswith("git version ")
    assert cli.workspace_dirs() == []


@pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}")
def test_run_in_a_sandbox_with_json_prints_one_document_and_no_progress(cli: RoostCli) -> None:
    proc = cli("run", "debian:12", "--backend", "sandbox", "--json", "--", "git", "--version", check_rc=0)
    assert proc.stderr == ""
    result = cli.json("run", "debian:12", "--backend", "sandbox", "--", "git", "--version")
    assert result["exit_code"] == 0
    assert result["stdout"].startswith("git version ")
    assert cli.workspace_dirs() == []


@pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}")
def test_the_readme_cli_quickstart_runs_make_test_and_a_venv_in_debian_12(cli: RoostCli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Makefile").write_text("test:\n\tpython3 -c 'print(\"tests pass\")'\nbroken:\n\texit 3\n")
    # As README.md's CLI quickstart types it (the seed path given absolute: the CLI runs elsewhere).
    cli(
        "workspace",
        "create",
        "debian:12",
        "--name",
        "demo",
        "--seed-path",
        str(repo),
        "--backend",
        "sandbox",
        check_rc=0,
    )
    try:
        made = cli("workspace", "exec", "demo", "--", "make", "test", check_rc=0)
        cli("workspace", "exec", "demo", "--", "make", "broken", check_rc=2)  # make's own code for a failed target
        venv = cli("workspace", "exec", "demo", "--", "bash", "-c", "python3 -m venv .venv && .venv/bin/pip --version")
    finally:
        cli("workspace", "delete", "demo", check_rc=0)

    assert made.stdout.splitlines()[-1] == "tests pass"
    assert venv.returncode == 0, venv.stderr
    assert venv.stdout.startswith("pip ") and "/workspace/.venv/" in venv.stdout
