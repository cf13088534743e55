"""A `roost ui` server for the dashboard's tests: the CLI as a user starts it, on a state
directory of its own with the mock backend, stopped (by its pid) at teardown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cli_helpers import home_with_shared_images

from helpers import delete_all_workspaces
from roost.client import Roost

START_DEADLINE = 20.0


@dataclass
class UiServer:
    process: subprocess.Popen[str]
    login_url: str
    port: int
    token: str
    home: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cookie(self) -> str:
        return f"roost_ui_{self.port}={self.token}"

    def request(self, path: str, *, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
        """(status, body) of one HTTP request to the server, redirects not followed."""
        request = urllib.request.Request(self.base + path, headers=headers or {}, method=method)
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def start_ui(home: Path, backend: str = "mock") -> UiServer:
    """`roost ui --no-open --json --port 0` on `home`, once it has printed its URL."""
    env = {**os.environ, "ROOST_HOME": str(home), "ROOST_BACKEND": backend, "LANG": "C.UTF-8"}
    argv = [sys.executable, "-m", "roost", "ui", "--no-open", "--json", "--port", "0"]
    # Its stderr goes to a file: a pipe nobody reads would stop the server once it filled.
    log = (home.parent / "ui-server.log").open("w")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    log.close()
    assert process.stdout is not None
    deadline = time.monotonic() + START_DEADLINE
    line = process.stdout.readline()  # the server prints it before it serves; a dead one gives ""
    if not line or time.monotonic() > deadline:
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"roost ui did not start: {(home.parent / 'ui-server.log').read_text()}")
    url = json.loads(line)["url"]
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    return UiServer(process, url, parts.port, parse_qs(parts.query)["token"][0], home)


@contextmanager
def running_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """A `roost ui` on a new state directory; at exit its workspaces are deleted and it is stopped."""
    server = start_ui(home_with_shared_images(tmp_path_factory.mktemp("ui") / "home"))
    try:
        yield server
    finally:
        server.stop()
        with Roost(home=server.home, backend="mock") as roost:
            delete_all_workspaces(roost)
