"""A workspace that may reach only the Python package index, with a published web port.

    uv run python examples/network_allowlist.py

On the sandbox backend (the default wherever bubblewrap works) the workspace
gets the `allowlist` policy with the `@pypi` preset: pypi.org resolves, any
other name does not, and every refusal is in the decision log. A service's
port is published on the host's 127.0.0.1. The policy is then widened to
`egress` live, without restarting the workspace. On the mock backend
(`ROOST_BACKEND=mock`), which isolates nothing, every policy but `off` is
refused, and the example shows that refusal. State goes to a temporary
ROOST_HOME, so the example leaves nothing behind.
"""

from __future__ import annotations

import sys
import tempfile
import urllib.request
from pathlib import Path

from roost import Readiness, Roost, RoostError

LOOKUP = """
import socket, sys
for name in sys.argv[1:]:
    try:
        print(name, "->", socket.gethostbyname(name))
    except OSError as exc:
        print(name, "-> refused:", exc)
"""


def show_refusal(roost: Roost) -> None:
    try:
        roost.create_workspace("debian:12", network_policy="allowlist", allow=["@pypi"])
    except RoostError as exc:
        print(f"{roost.doctor().default_backend} refuses allowlist: {exc.code} ({exc.message})")
        print(f"  hint: {exc.hint}")


def allowlisted(roost: Roost) -> None:
    with roost.create_workspace("debian:12", network_policy="allowlist", allow=["@pypi"]) as ws:
        network = ws.network.show()
        print(f"policy {network.policy}: {', '.join(network.allow)} (enforced: {network.enforced})")
        print(ws.exec(["python3", "-c", LOOKUP, "pypi.org", "example.com"], timeout=30).stdout, end="")
        for decision in ws.network.log(denied=True):
            print(f"denied {decision.protocol} {decision.name or decision.address}: {decision.reason}")

        ws.files.write("/workspace/site/index.html", "hello from inside the workspace\n")
        web = ws.services.start(
            "web",
            ["python3", "-m", "http.server", "8000", "--directory", "/workspace/site"],
            ready=Readiness(tcp="8000"),
            publish=["8000"],
        )
        (port,) = web.ports
        url = f"http://{port.host_address}:{port.host_port}/"
        with urllib.request.urlopen(url, timeout=10) as response:
            print(f"published {url} -> guest port {port.guest_port}: {response.read().decode().strip()}")

        widened = ws.network.set("egress")  # live: the workspace keeps running
        print(f"now {widened.policy}, ports still {[p.host_port for p in widened.ports]}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="roost-network-") as scratch, Roost(home=Path(scratch, "home")) as roost:
        if roost.doctor().default_backend == "mock":
            show_refusal(roost)
        else:
            allowlisted(roost)
        print(f"workspaces left: {len(roost.list_workspaces())}")
    print("network example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
