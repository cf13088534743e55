"""`roost workspace network show|set|log` and the network flags of create, as a user types them."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from roost.backends import get_backend
from roost.network.attachment import network_available

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_a_mock_workspace_shows_loopback_only_and_refuses_a_policy(roost: RoostCli) -> None:
    ws = roost.create()
    assert "network  off (not enforced: loopback only)" in roost("workspace", "status", ws, check_rc=0).stdout
    shown = roost.json("workspace", "network", "show", ws)
    assert (shown["policy"], shown["allow"], shown["ports"], shown["enforced"]) == ("off", [], [], False)
    refused = roost("workspace", "network", "set", ws, "--policy", "egress", "--json")
    assert "unisolated" in roost.error(refused, 2, "network_unsupported")["message"]
    assert roost.json("workspace", "network", "log", ws) == {"decisions": []}
    assert roost("workspace", "network", "log", ws, check_rc=0).stdout == "no decisions yet\n"


def test_a_sandbox_workspace_takes_a_policy_and_ports_at_create_and_changes_them_live(roost: RoostCli) -> None:
    if not get_backend("sandbox").availability().available:
        pytest.skip("the sandbox backend is not available here")
    ok, why = network_available()
    if not ok:
        pytest.skip(why)
    (roost.home / "images").parent.mkdir(parents=True, exist_ok=True)
    if not (roost.home / "images").exists():
        (roost.home / "images").symlink_to(Path(os.environ.get("ROOST_IMAGES") or REPO / ".cache" / "images"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host_port = probe.getsockname()[1]
    ws = roost.create(
        "--backend",
        "sandbox",
        "--network-policy",
        "allowlist",
        "--allow-host",
        "@pypi",
        "--publish",
        f"{host_port}:8000",
    )
    status = roost("workspace", "status", ws, check_rc=0).stdout
    assert "network  allowlist (enforced: roost's gateway" in status
    assert "allow  pypi.org:443, files.pythonhosted.org:443" in status
    assert f"port   127.0.0.1:{host_port} -> 8000" in status
    taken = roost("workspace", "create", "debian:12", "--backend", "sandbox", "--publish", f"{host_port}:80", "--json")
    roost.error(taken, 1, "port_in_use")
    _follow_sees_a_new_decision(roost, ws)  # under the allowlist: a lookup of another name is denied
    web = roost.json(
        "workspace",
        "service",
        "start",
        ws,
        "web",
        "--publish",
        "9000",
        "--ready-tcp",
        "9000",
        "--",
        "python3",
        "-m",
        "http.server",
        "9000",
    )
    (port,) = web["ports"]
    assert (port["guest_port"], port["service"], port["host_address"]) == (9000, "web", "127.0.0.1")
    assert (
        f"port     127.0.0.1:{port['host_port']} -> 9000 (service web)"
        in roost("workspace", "service", "status", ws, "web", check_rc=0).stdout
    )
    roost("workspace", "service", "stop", ws, "web", check_rc=0)
    assert [p["service"] for p in roost.json("workspace", "network", "show", ws)["ports"]] == [None]
    mixed = roost("workspace", "network", "set", ws, "--policy", "egress", "--allow", "x.test", "--json")
    assert "allowlist" in roost.error(mixed, 2, "invalid_argument")["message"]  # egress takes no allow-list
    changed = roost.json("workspace", "network", "set", ws, "--policy", "egress", "--no-publish")
    assert (changed["policy"], changed["ports"], changed["enforced"]) == ("egress", [], True)
    text = roost("workspace", "network", "show", ws, check_rc=0).stdout
    assert text.startswith("network  egress (enforced:") and "port" not in text
    roost("workspace", "delete", ws, check_rc=0)
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", host_port))  # freed


def _follow_sees_a_new_decision(roost: RoostCli, ws: str) -> None:
    """`network log --follow --json` prints a decision made after it started, one JSON line each."""
    follower = roost.popen("workspace", "network", "log", ws, "--follow", "--denied", "--json")
    try:
        time.sleep(0.5)  # it prints what is kept first, then each new decision
        lookup = "import socket\ntry: socket.gethostbyname('followed.invalid')\nexcept OSError: pass"
        roost("workspace", "exec", ws, "--", "python3", "-c", lookup, check_rc=0)
        assert follower.stdout is not None
        deadline = time.monotonic() + 10
        seen: list[dict[str, object]] = []
        while time.monotonic() < deadline and not any(d.get("name") == "followed.invalid" for d in seen):
            ready, _, _ = select.select([follower.stdout], [], [], 0.2)
            if ready:
                seen.append(json.loads(follower.stdout.readline()))
        assert any(d.get("name") == "followed.invalid" and d.get("verdict") == "denied" for d in seen), seen
    finally:
        follower.send_signal(signal.SIGINT)
        roost.finish(follower)
