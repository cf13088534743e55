"""Issue 11: the MCP server's host roots must be named and never cover roost's state; HTTP needs a token.

Before, a server started from `/` could read anything (its default root was
its working directory, roost's own state included), and the streamable-HTTP
transport let any local user run commands as the server's user.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from helpers import wait_until
from roost.mcp.__main__ import main as mcp_main

DEADLINE = 30.0
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def server_env(home: Path, user_home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ROOST_HOME": str(home),
        "ROOST_BACKEND": "mock",
        "HOME": str(user_home),
        "LANG": "C.UTF-8",
    }


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("user", "user/project", "user/.local/share/roost")}
    for path in found.values():
        path.mkdir(parents=True, exist_ok=True)
    return found


def start_refused(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> dict[str, str]:
    """Run `python -m roost.mcp ARGS`'s entry point, which must refuse to start (exit 2, JSON error)."""
    for name, value in server_env(dirs["user/.local/share/roost"], dirs["user"]).items():
        monkeypatch.setenv(name, value)
    assert mcp_main(list(args)) == 2
    error: dict[str, str] = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]
    return error


@pytest.mark.parametrize(
    "root",
    ["/", "user", "", "user/.local", "user/.local/share/roost", "user/.local/share/roost/images"],
    ids=["fs-root", "home", "home-parent", "state-ancestor", "roost-home", "image-cache"],
)
def test_the_server_refuses_to_start_with_a_root_covering_home_or_roost_state(
    dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root: str,
) -> None:
    path = root if root.startswith("/") else str(tmp_path / root)
    os.makedirs(path, exist_ok=True)
    error = start_refused(dirs, monkeypatch, capsys, "--allow-root", str(dirs["user/project"]), "--allow-root", path)
    assert error["code"] == "root_not_allowed"
    assert "never allowed" in error["message"] and "--allow-root" in error["hint"]
    assert not (dirs["user/.local/share/roost"] / "workspaces").exists(), "nothing started"


def test_a_token_file_others_can_read_is_refused_at_start(
    dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("x" * 40)
    token_file.chmod(0o644)
    error = start_refused(
        dirs, monkeypatch, capsys, "--transport", "http", "--port", "1", "--token-file", str(token_file)
    )
    assert error["code"] == "token_file_insecure"


@dataclass(frozen=True)
class HttpServer:
    url: str
    token: str
    proc: subprocess.Popen[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepting(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """One server for the module's HTTP tests (a start costs seconds on a loaded machine)."""
    tmp_path = tmp_path_factory.mktemp("http")
    port = free_port()
    home = tmp_path / "roost-home"
    with open(tmp_path / "server.log", "w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "roost.mcp", "--transport", "http", "--port", str(port), "--profile", "core"],
            env=server_env(home, tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        try:
            wait_until(lambda: accepting(port) or proc.poll() is not None, timeout=DEADLINE, what="the HTTP server")
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            token_file = home / "mcp" / f"http-{port}.token"
            token = token_file.read_text().strip()
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            assert stat.S_IMODE((home / "mcp").stat().st_mode) == 0o700
            log.seek(0)
            assert log.read().count(token) == 1, "the generated token is shown once on stderr"
            yield HttpServer(f"http://127.0.0.1:{port}/mcp", token, proc)
        finally:
            proc.kill()
            proc.wait(DEADLINE)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "bearer"])
def test_http_without_the_right_token_is_401_and_makes_no_session(
    http_server: HttpServer, authorization: str | None
) -> None:
    headers = dict(MCP_HEADERS) | ({"Authorization": authorization} if authorization else {})
    response = httpx2.post(http_server.url, json=INITIALIZE, headers=headers, timeout=DEADLINE)
    assert response.status_code == 401
    assert "mcp-session-id" not in response.headers
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_http_token_differing_in_one_character_is_refused(http_server: HttpServer) -> None:
    last = http_server.token[-1]
    near = http_server.token[:-1] + ("A" if last != "A" else "B")
    headers = MCP_HEADERS | {"Authorization": f"Bearer {near}"}
    assert httpx2.post(http_server.url, json=INITIALIZE, headers=headers, timeout=DEADLINE).status_code == 401


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_http_with_the_token_works_through_the_real_mcp_client(http_server: HttpServer) -> None:
    headers = {"Authorization": f"Bearer {http_server.token}"}
    with anyio.fail_after(DEADLINE):
        async with (
            httpx2.AsyncClient(headers=headers, timeout=DEADLINE) as client,
            streamable_http_client(http_server.url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert "workspace_create" in tools
            listed = await session.call_tool("workspace_list", {})
            assert not listed.is_error and listed.structured_content == {"workspaces": []}
            refused = await session.call_tool("workspace_create", {"seed_path": "/etc"})
            assert refused.is_error and "allows no host paths" in refused.content[0].text  # type: ignore[union-attr]
