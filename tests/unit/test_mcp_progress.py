"""MCP progress notifications in process: what the SDK reports while a workspace is made reaches the client.

The image steps here are reported by a stand-in around the mock backend's create (the mock backend
needs no image); a real pull over stdio is in tests/integration/test_mcp_progress_stdio.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from helpers import delete_all_workspaces
from roost.client import Roost
from roost.mcp.progress import BYTES_INTERVAL_SECONDS, ToolProgress, step_message
from roost.mcp.server import ServeOptions, build_server

pytestmark = pytest.mark.anyio

BLOB = "sha256:" + "ab" * 32
MIB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def report_image_steps(progress: Callable[[str, int, int], None] | None) -> None:
    """What a first create reports: a pull's blob in 64 chunks, then unpacking (as `ensure_image` does)."""
    assert progress is not None, "the tool must hand the SDK a progress callback"
    for chunk in range(1, 65):
        progress(BLOB, chunk * MIB, 64 * MIB)
    progress("unpacking layer 1/1", 0, 1)


def with_image_steps(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def wrapped(*args: Any, progress: Callable[[str, int, int], None] | None = None, **kwargs: Any) -> Any:
        report_image_steps(progress)
        return create(*args, progress=progress, **kwargs)

    return wrapped


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("workspace_create", {"env": "debian:12"}), ("run", {"command": "true"})],
)
async def test_a_tool_that_makes_a_workspace_sends_the_image_steps_as_progress(
    tool: str, arguments: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roost = Roost(home=tmp_path / "home", backend="mock")
    monkeypatch.setattr(roost, "create_workspace", with_image_steps(roost.create_workspace))
    monkeypatch.setattr(roost, "create_run_workspace", with_image_steps(roost.create_run_workspace))
    server = build_server(ServeOptions(profile="core"), roost)
    heard: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message))

    try:
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments, progress_callback=on_progress)
    finally:
        delete_all_workspaces(roost)  # workspace_create's workspace, and its agent, go with the test
        roost.close()

    assert not result.is_error, result.content
    values = [progress for progress, _total, _message in heard]
    assert values == sorted(set(values)), "progress must grow with every notification"
    messages = [message or "" for _progress, _total, message in heard]
    assert messages[-1] == "[0/1] unpacking layer 1/1"
    pulled = [message for message in messages if message.startswith("pulling sha256:abab")]
    assert pulled[0] == "pulling sha256:abababababab: 1.0/64.0 MiB"
    assert pulled[-1] == "pulling sha256:abababababab: 64.0/64.0 MiB", "the last count of a blob is always sent"
    assert len(pulled) < 10, "a blob's byte counts are thinned out, not sent per chunk"


def test_byte_counts_are_sent_at_most_every_interval_and_steps_always() -> None:
    now = [0.0]
    sent: list[tuple[float, str]] = []

    class Recorder:
        async def report_progress(self, progress: float, total: float | None, message: str | None) -> None:
            sent.append((progress, message or ""))

    relay = ToolProgress(Recorder(), clock=lambda: now[0])  # type: ignore[arg-type]

    def work() -> None:
        relay(BLOB, 1, 10)
        relay(BLOB, 2, 10)  # within the interval: dropped
        now[0] += BYTES_INTERVAL_SECONDS
        relay(BLOB, 3, 10)
        relay(BLOB, 10, 10)  # the last: sent
        relay("hashing the image", 6, 7)

    async def main() -> None:
        await anyio.to_thread.run_sync(work)

    anyio.run(main)
    assert [progress for progress, _ in sent] == [1, 2, 3, 4]
    assert [message for _, message in sent][-1] == "[6/7] hashing the image"


def test_step_messages_say_where_the_work_is() -> None:
    assert step_message("downloading packages", 2, 7) == "[2/7] downloading packages"
    assert step_message(BLOB, 3 * MIB // 2, 3 * MIB) == "pulling sha256:abababababab: 1.5/3.0 MiB"
    assert step_message("environment debian:12", 0, 0) == "environment debian:12"
