"""A background service with a readiness probe, driven through the SDK.

    uv run python examples/services.py

Starts `python3 -m http.server` as a named service and waits until an HTTP
probe gets an answer, fetches a page from it with a separate exec (python's
urllib, inside the workspace), prints the service's log and status counts,
shows what a failing readiness probe reports, and stops everything. Runs on
the mock backend (host processes, NOT isolated) with a temporary ROOST_HOME,
so it leaves nothing behind.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

from roost import Readiness, Roost


def free_port() -> int:
    # The mock backend shares the host's network, so pick a port nobody uses.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


FETCH = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    print(response.status, response.read().decode().strip())
"""


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="roost-services-") as scratch,
        Roost(home=Path(scratch, "home"), backend="mock") as roost,
        roost.create_workspace("debian:12", name="services") as ws,
    ):
        ws.files.write("/workspace/site/index.html", "hello from a roost service\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}/index.html"

        # start() returns once the probe passes (state "ready") or gives up (state "failed").
        web = ws.services.start(
            "web",
            ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd="/workspace/site",
            ready=Readiness(http=url, timeout_s=15, interval_ms=100),
        )
        print(f"service {web.name}: {web.state} (pid {web.pid}, probe {web.probe and web.probe['kind']})")
        if web.state != "ready":
            raise SystemExit(f"web did not become ready: {web.reason}\n{web.log_tail}")

        # Any other call can now use it: here a one-off exec inside the workspace.
        fetched = ws.exec(["python3", "-c", FETCH, url], timeout=30)
        print(f"fetched: {fetched.stdout.strip()}")
        if not fetched.ok or "hello from a roost service" not in fetched.stdout:
            raise SystemExit(f"fetch failed: {fetched.stderr}")

        # http.server logs each request to stderr; the log lives outside /workspace.
        print("last log line:", ws.services.logs("web", stream="stderr", tail=1).strip())

        # A probe that never passes: the service is stopped and reported as failed.
        broken = ws.services.start(
            "broken",
            "echo 'starting up'; sleep 30",
            ready=Readiness(file="never-created.flag", timeout_s=0.5, interval_ms=50),
        )
        print(f"service {broken.name}: {broken.state} ({broken.reason}); its output: {broken.log_tail!r}")

        print("service counts:", ws.info().services)
        stopped = ws.services.stop("web", timeout=5)
        print(f"service {stopped.name}: {stopped.state} (signal {stopped.signal})")
        if stopped.state != "stopped":
            raise SystemExit(f"expected web to be stopped, got {stopped.state}")
        print("states:", {s.name: s.state for s in ws.services.list()})
    print("services example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
