"""Traffic through a booted Firecracker guest held to its network policy by roost's gateway, on the
guest's TAP. These need a host whose KVM boots stock guest kernels (and root, for the test host);
everywhere else they skip, saying why. The same path without a booted guest is tested in
test_firecracker_network.py (the real VMM) and test_network_guest_link.py (a guest namespace)."""

from __future__ import annotations

import importlib.util
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from firecracker_fakes import firecracker_binary
from network_lab import LabDns, LabHost

from helpers import delete_all_workspaces
from roost import Roost
from roost.backends.firecracker.binary import FIRECRACKER_ENV
from roost.backends.kvm import probe_kvm
from roost.config import IMAGES_ENV
from roost.network.resolver import RESOLVERS_VARIABLE

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kvm, pytest.mark.integration, pytest.mark.slow]
FETCH = (
    "import sys, urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen(f'http://{sys.argv[1]}/', timeout=10).read().decode())\n"
    "except OSError as exc:\n"
    "    print('refused', type(exc).__name__)\n"
)


def _why_not() -> str | None:
    kvm = probe_kvm()
    if not kvm.can_boot_guests:
        return f"needs KVM that boots stock guest kernels; here: {kvm.kind}: {kvm.detail}"
    if os.geteuid() != 0:
        return "needs root to build the test host's namespace"
    if importlib.util.find_spec("roost.images.vm.build") is None:
        return "roost.images.vm.build (the guest image builder) is not in this tree"
    return None


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Roost, LabHost]]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    binary, why = firecracker_binary()
    if binary is None:
        pytest.skip(why)
    (tmp_path / "host").mkdir()
    host = LabHost(tmp_path / "host", ["allowed.test", "other.test"])
    dns = LabDns(host.address)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    shared = Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")
    shared.mkdir(parents=True, exist_ok=True)
    (home / "images").symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv(RESOLVERS_VARIABLE, f"127.0.0.1:{dns.port}")
    monkeypatch.setenv(FIRECRACKER_ENV, str(binary))
    client = Roost(home=home, backend="firecracker")
    try:
        yield client, host
    finally:
        delete_all_workspaces(client)
        client.close()
        dns.close()
        host.close()


def test_a_guest_under_allowlist_reaches_an_allowed_name_only_and_every_decision_is_logged(
    lab: tuple[Roost, LabHost],
) -> None:
    roost, _host = lab
    ws = roost.create_workspace("debian:12", ephemeral=False, network_policy="allowlist", allow=["allowed.test"])
    allowed = ws.exec(["python3", "-c", FETCH, "allowed.test"])
    denied = ws.exec(["python3", "-c", FETCH, "other.test"])
    assert allowed.stdout.strip() == "host=allowed.test"
    assert denied.stdout.startswith("refused")
    verdicts = {(d.name, d.verdict) for d in ws.network.log()}
    assert ("allowed.test", "allowed") in verdicts and ("other.test", "denied") in verdicts
    ws.network.set("egress")  # live, no restart
    assert ws.exec(["python3", "-c", FETCH, "other.test"]).stdout.strip() == "host=other.test"


def test_a_published_port_reaches_a_server_in_the_guest_and_delete_leaves_no_namespace(
    lab: tuple[Roost, LabHost],
) -> None:
    roost, _host = lab
    ws = roost.create_workspace("debian:12", ephemeral=False, publish=["0:8000"])
    ws.exec(["sh", "-c", "cd /tmp && nohup python3 -m http.server --bind 0.0.0.0 8000 >/dev/null 2>&1 &"])
    (port,) = ws.network.show().ports
    deadline = time.monotonic() + 20
    answer = b""
    while not answer.startswith(b"HTTP/1.0 200"):
        assert time.monotonic() < deadline, "the server in the guest never answered"
        try:
            with socket.create_connection(("127.0.0.1", port.host_port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                answer = sock.recv(64)
        except OSError:
            time.sleep(0.2)
    ws.delete()
    assert not Path(f"/run/netns/roost-{ws.id}").exists()
