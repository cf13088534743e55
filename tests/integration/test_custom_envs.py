"""Custom envs built from a recipe, through the SDK, the CLI and MCP: the build runs in a sandbox
of the parent, the result is a layer mounted over the parent's rootfs, a rebuild with nothing
changed is a cache hit, a change is a new layer, a failing step leaves nothing behind.

Each module gets an image cache of its own whose rootfs/, idmapped/ and envs/ are the shared
cache's (debian:12 built once), so layers and custom env records never leak into other tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from helpers import SHARED_IMAGES, delete_all_workspaces, discard_tree
from roost import Roost
from roost.backends import get_backend
from roost.config import IMAGES_ENV
from roost.errors import ConflictError, ImageError, InvalidArgument, NotFound
from roost.images.cache import ImageCache
from roost.mcp.server import ServeOptions, build_server

SANDBOX = get_backend("sandbox").availability()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"),
    pytest.mark.skipif(
        ImageCache(SHARED_IMAGES).lookup("debian:12") is None, reason="debian:12 is not in the shared image cache"
    ),
]


def images_over_shared(parent: Path) -> Path:
    """An image cache whose base images are the shared cache's and whose layers and recipes are its own."""
    images = parent / "images"
    images.mkdir(mode=0o700)
    for name in ("rootfs", "idmapped", "envs"):
        (images / name).symlink_to(SHARED_IMAGES / name, target_is_directory=True)
    return images


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("sources")
    (where / "app").mkdir()
    (where / "app" / "main.py").write_text("print('from the layer')\n")
    (where / "motd").write_text("hello from a recipe\n")
    return where


@pytest.fixture(scope="module")
def roost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Roost]:
    home = tmp_path_factory.mktemp("home")
    images_over_shared(home)
    with pytest.MonkeyPatch.context() as patched:
        for name in (IMAGES_ENV, "ROOST_REGISTRY", "ROOST_IMAGE_SOURCES"):
            patched.delenv(name, raising=False)  # each home's `images` is its cache
        client = Roost(home=home, backend="sandbox")
        yield client
        delete_all_workspaces(client)
        client.close()


def recipe(sources: Path, marker: str = "1") -> dict[str, object]:
    return {
        "from_": "debian:12",
        "copy": [f"{sources / 'app'}:/opt/app", f"{sources / 'motd'}:/etc/motd"],
        "run": [f"echo {marker} > /etc/recipe-marker", "rm /etc/issue.net", "rm -r /usr/share/bash-completion"],
        "env": {"APP_ENV": "test", "PATH": "/opt/app:/usr/local/bin:/usr/bin:/bin"},
    }


@pytest.fixture(scope="module")
def built(roost: Roost, sources: Path) -> str:
    """A custom env with run, env and copy steps (no network), built once for the module."""
    roost.create_env("recipe-test", **recipe(sources))  # type: ignore[arg-type]
    return "recipe-test"


def test_a_workspace_of_a_custom_env_has_what_the_recipe_did(roost: Roost, built: str) -> None:
    with roost.create_workspace(built) as ws:
        assert ws.exec("python3 /opt/app/main.py").stdout == "from the layer\n"
        assert ws.exec("cat /etc/motd /etc/recipe-marker").stdout == "hello from a recipe\n1\n"
        assert ws.exec("test -e /etc/issue.net").exit_code == 1  # deleted by the recipe: a whiteout
        assert ws.exec("test -e /usr/share/bash-completion").exit_code == 1  # a deleted directory
        assert ws.exec("test -x /usr/bin/git").exit_code == 0  # the parent's files show through
        assert ws.exec("echo $APP_ENV").stdout == "test\n"
        assert ws.exec("echo $APP_ENV", env={"APP_ENV": "mine"}).stdout == "mine\n"  # per exec wins


def test_users_other_than_root_can_use_tmp_and_the_resolver_config(roost: Roost) -> None:
    # What apt's _apt user needs in a build: a world-writable /tmp and a readable resolv.conf.
    with roost.create_workspace("debian:12") as ws:
        ran = ws.exec("su -s /bin/sh nobody -c 'mktemp -p /tmp && mktemp -p /dev/shm && cat /etc/resolv.conf'")
        assert ran.exit_code == 0, ran.stderr
        assert "nameserver" in ran.stdout


def test_the_mock_backend_knows_custom_env_names_and_sets_their_variables(roost: Roost, built: str) -> None:
    with Roost(home=roost.home, backend="mock") as mock:
        with mock.create_workspace(built) as ws:
            assert ws.exec("echo $APP_ENV").stdout == "test\n"
        with pytest.raises(NotFound) as unknown:
            mock.create_workspace("Recipe-Nowhere")  # neither a custom env nor an image reference
        assert unknown.value.code == "env_not_found"


def test_inspect_shows_the_recipe_parent_and_layer(roost: Roost, built: str) -> None:
    info = roost.inspect_env(built)
    assert (info.source, info.parent, info.cached) == ("recipe", "debian:12", True)
    assert info.recipe is not None and info.recipe["run"][0] == "echo 1 > /etc/recipe-marker"
    assert info.layers == (info.key,)
    assert info.env_vars is not None and info.env_vars["APP_ENV"] == "test"
    assert built in {env.name for env in roost.envs()}


def test_the_same_recipe_again_is_a_cache_hit_without_a_sandbox(roost: Roost, sources: Path, built: str) -> None:
    before = roost.inspect_env(built)
    started = time.monotonic()
    again = roost.create_env(built, **recipe(sources))  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0
    assert again.key == before.key and again.created_at == before.created_at
    assert roost.list_workspaces() == []


def test_changed_copied_content_makes_a_new_layer(roost: Roost, sources: Path, built: str, tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    (changed / "app").mkdir(parents=True)
    (changed / "app" / "main.py").write_text("print('changed')\n")
    (changed / "motd").write_text((sources / "motd").read_text())
    with pytest.raises(ConflictError) as refused:
        roost.create_env(built, **recipe(changed))  # type: ignore[arg-type]
    assert refused.value.code == "env_exists"
    info = roost.create_env("recipe-changed", **recipe(changed))  # type: ignore[arg-type]
    assert info.key != roost.inspect_env(built).key
    with roost.create_workspace("recipe-changed") as ws:
        assert ws.exec("python3 /opt/app/main.py").stdout == "changed\n"


def test_a_custom_env_can_be_the_parent_of_another(roost: Roost, built: str) -> None:
    child = roost.create_env("recipe-child", from_=built, run=["echo child >> /etc/motd"], env={"LEVEL": "2"})
    assert child.parent == built and len(child.layers) == 2
    with roost.create_workspace("recipe-child") as ws:
        assert ws.exec("cat /etc/motd; echo $APP_ENV $LEVEL").stdout == "hello from a recipe\nchild\ntest 2\n"
    with pytest.raises(ConflictError) as refused:
        roost.remove_env(built)
    assert refused.value.code == "env_in_use" and refused.value.details["envs"] == ["recipe-child"]
    roost.remove_env("recipe-child")


def test_a_failing_step_is_build_failed_and_leaves_nothing(roost: Roost) -> None:
    lines: list[str] = []
    with pytest.raises(ImageError) as failed:
        roost.create_env(
            "recipe-broken",
            from_="debian:12",
            run=["echo before", "echo on the way; echo oops >&2; exit 7", "echo never"],
            progress=lambda step, _done, _total: lines.append(step),
        )
    error = failed.value
    assert error.code == "build_failed"
    assert error.details["step"] == "run echo on the way; echo oops >&2; exit 7"
    assert error.details["exit_code"] == 7
    assert "oops" in error.details["output_tail"] and "on the way" in error.details["output_tail"]
    assert "run echo before: before" in lines  # step output streams as progress
    assert "run echo never" not in lines  # no step after the failing one
    assert roost.list_workspaces() == []
    images = roost.home / "images"
    assert list((images / "tmp").iterdir()) == []
    assert "recipe-broken" not in {env.name for env in roost.envs()}


def test_remove_is_refused_while_a_workspace_uses_the_env(roost: Roost, sources: Path) -> None:
    roost.create_env("recipe-remove", from_="debian:12", run=["true"], env={"X": "1"})
    ws = roost.create_workspace("recipe-remove", name="uses-recipe", ephemeral=False)
    try:
        with pytest.raises(ConflictError) as refused:
            roost.remove_env("recipe-remove")
        assert refused.value.code == "env_in_use" and refused.value.details["workspaces"] == ["uses-recipe"]
        ws.stop()
        ws.start()  # a start mounts the same layers again
        assert ws.exec("echo $X").stdout == "1\n"
    finally:
        roost.delete_workspace(ws.id)
    roost.remove_env("recipe-remove")
    assert "recipe-remove" not in {env.name for env in roost.envs()}


def test_names_and_recipes_are_checked_before_anything_runs(roost: Roost) -> None:
    for name in ("debian:12", "Bad Name", ""):
        with pytest.raises(InvalidArgument) as bad:
            roost.create_env(name, from_="debian:12", run=["true"])
        assert bad.value.code == "invalid_env_name"
    with pytest.raises(InvalidArgument) as bad:
        roost.create_env("ok", from_="debian:12", apt=["jq; rm -rf /"])
    assert bad.value.code == "invalid_recipe"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "ROOST_HOME": str(home), "ROOST_BACKEND": "sandbox", "LANG": "C.UTF-8"}
    env.update({k: v for k, v in os.environ.items() if k.startswith("UV_")})
    return subprocess.run(
        [sys.executable, "-m", "roost", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_builds_from_a_recipe_file_and_refuses_unknown_keys(roost: Roost, sources: Path, tmp_path: Path) -> None:
    good = tmp_path / "roost-env.toml"
    good.write_text(
        f'from = "debian:12"\ncopy = ["{sources / "motd"}:/etc/motd"]\nrun = ["echo toml > /etc/from-toml"]\n'
        'env = {FROM_TOML = "yes"}\n'
    )
    made = _cli(roost.home, "env", "create", "recipe-cli", "-f", str(good), "--json")
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    assert (info["source"], info["parent"], info["env_vars"]) == ("recipe", "debian:12", {"FROM_TOML": "yes"})
    ran = _cli(roost.home, "run", "recipe-cli", "--", "bash", "-c", "cat /etc/from-toml; echo $FROM_TOML")
    assert ran.stdout == "toml\nyes\n", ran.stderr
    listed = json.loads(_cli(roost.home, "env", "list", "--json").stdout)["envs"]
    assert "recipe-cli" in {env["name"] for env in listed}
    bad = tmp_path / "bad.toml"
    bad.write_text('from = "debian:12"\nrunn = ["true"]\n')
    refused = _cli(roost.home, "env", "create", "recipe-bad", "-f", str(bad), "--json")
    assert refused.returncode != 0 and "runn" in refused.stdout + refused.stderr
    assert _cli(roost.home, "env", "remove", "recipe-cli").returncode == 0


def test_push_and_pull_through_a_registry_restores_a_usable_env(
    roost: Roost, built: str, local_registry: str, tmp_path: Path
) -> None:
    digest = roost.push_env(built, f"{local_registry}/custom/recipe-test:1")
    assert digest.startswith("sha256:")
    elsewhere = Roost(home=tmp_path / "elsewhere", backend="sandbox")
    try:
        pulled = elsewhere.pull_env("recipe-test:1", registry=f"{local_registry}/custom")
        assert (pulled.source, pulled.parent, pulled.layers) == ("recipe", "debian:12", ())
        assert pulled.recipe == roost.inspect_env(built).recipe
        with elsewhere.create_workspace("recipe-test:1") as ws:
            assert ws.exec("python3 /opt/app/main.py; echo $APP_ENV").stdout == "from the layer\ntest\n"
            assert ws.exec("test -e /etc/issue.net || test -e /usr/share/bash-completion").exit_code == 1
    finally:
        delete_all_workspaces(elsewhere)
        elsewhere.close()
        discard_tree(elsewhere.home / "images")  # a whole pulled rootfs


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_mcp_env_create_builds_and_workspace_create_uses_it(roost: Roost, sources: Path) -> None:
    server = build_server(ServeOptions(profile="full", allow_roots=(str(sources),)), roost)
    steps: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(message or "")

    async with Client(server) as client:
        made = await client.call_tool(
            "env_create",
            {
                "name": "recipe-mcp",
                "parent": "debian:12",
                "copy": [f"{sources / 'motd'}:/etc/motd"],
                "run": ["echo mcp > /etc/from-mcp"],
                "env": {"FROM_MCP": "1"},
            },
            progress_callback=on_progress,
        )
        assert not made.is_error, made.content
        assert steps, "env_create sent no progress notification while it built"
        assert made.structured_content is not None and made.structured_content["parent"] == "debian:12"
        outside = await client.call_tool(
            "env_create", {"name": "recipe-mcp2", "parent": "debian:12", "copy": ["/etc/hostname:/etc/x"]}
        )
        assert outside.is_error and "path_not_allowed" in str(outside.content[0])
        ws = await client.call_tool("workspace_create", {"env": "recipe-mcp"})
        assert ws.structured_content is not None
        ran = await client.call_tool(
            "workspace_exec",
            {"workspace": ws.structured_content["id"], "command": "cat /etc/motd /etc/from-mcp; echo $FROM_MCP"},
        )
        assert ran.structured_content is not None
        assert ran.structured_content["stdout"] == "hello from a recipe\nmcp\n1\n"
        in_use = await client.call_tool("env_remove", {"name": "recipe-mcp"})
        assert in_use.is_error and "env_in_use" in str(in_use.content[0])
        await client.call_tool("workspace_delete", {"workspace": ws.structured_content["id"]})
        removed = await client.call_tool("env_remove", {"name": "recipe-mcp"})
        assert removed.structured_content == {"removed": "recipe-mcp"}


def _reachable(host: str, port: int = 80) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.network
def test_an_apt_step_installs_from_debian_through_the_allowlist(roost: Roost) -> None:
    if not _reachable("deb.debian.org"):
        pytest.skip("Debian's mirror cannot be reached from here")
    info = roost.create_env("recipe-apt", from_="debian:12", apt=["jq"])
    assert info.packages == ("jq",)
    with roost.create_workspace("recipe-apt") as ws:
        assert ws.exec("echo '{\"a\": 7}' | jq .a").stdout == "7\n"
        assert ws.exec("ls /var/lib/apt/lists | grep -c Packages").stdout.strip() == "0"  # lists not kept
    roost.remove_env("recipe-apt")
