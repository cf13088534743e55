"""MCP progress notifications end to end: a real MCP client over stdio sends a progressToken with
workspace_create, the server pulls the env from the local registry first, and the client hears the
pull's steps as `notifications/progress` before the workspace comes back.

The image is a small busybox image the test builds and pushes to the local registry
(tests/integration/registry.py, oci_images.py), named by its reference; the server's own image
cache starts empty. A pull of a catalog env reports through the same SDK callback.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from oci_images import busybox_tree, push_tree

from helpers import discard_tree, roost_client
from roost.backends import get_backend
from roost.images.cache import ImageCache

SANDBOX = get_backend("sandbox").availability()
DEADLINE = 120.0

pytestmark = [
    pytest.mark.integration,
    pytest.mark.anyio,
    pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def image_reference(local_registry: str, tmp_path: Path) -> str:
    """A small image (static busybox, no python3) pushed to a fresh repository of the local registry."""
    repository = f"progress-{uuid.uuid4().hex[:8]}/busybox"
    push_tree(local_registry, busybox_tree(tmp_path), tmp_path, repository=repository, tag="1")
    return f"{local_registry}/{repository}:1"


@pytest.fixture
def server_home(tmp_path: Path) -> Iterator[Path]:
    """The server's state directory, with its own (empty) image cache; emptied afterwards."""
    home = tmp_path / "server-home"
    home.mkdir(mode=0o700)
    try:
        yield home
    finally:
        with roost_client(home, "sandbox"):
            pass  # deletes whatever workspaces the server left
        discard_tree(home / "images")


async def test_workspace_create_that_pulls_its_env_sends_progress_notifications(
    image_reference: str, server_home: Path, tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "roost.mcp", "--profile", "core"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ROOST_HOME": str(server_home),
            "ROOST_BACKEND": "sandbox",
        },
        cwd=str(tmp_path),
    )
    heard: list[tuple[float, float | None, str]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message or ""))

    with open(tmp_path / "server.log", "w") as errlog, anyio.fail_after(DEADLINE):
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            created = await session.call_tool(
                "workspace_create", {"env": image_reference}, progress_callback=on_progress
            )
            assert not created.is_error, created.content
            info: dict[str, Any] = created.structured_content or {}
            ran = await session.call_tool("workspace_exec", {"workspace": info["id"], "command": "echo pulled"})
            await session.call_tool("workspace_delete", {"workspace": info["id"]})

    messages = [message for _progress, _total, message in heard]
    assert any(message.startswith("pulling sha256:") for message in messages), messages
    assert any("unpacking layer 1/1" in message for message in messages), messages
    values = [progress for progress, _total, _message in heard]
    assert values == sorted(set(values)), "progress must grow with every notification"
    assert (ran.structured_content or {}).get("stdout") == "pulled\n", ran.content
    assert ImageCache(server_home / "images").lookup(image_reference) is not None, "the env came from the registry"
