"""The network gateway serving a workspace that is a guest behind a link, as a Firecracker VMM's is.

The VMM's namespace W is user-owned (`unshare --user --map-root-user --net`,
as roost starts the VMM) and holds the guest's link as `tap0`. A stand-in
for the guest, where no KVM boots one, is a namespace of the test's own on
the far side of a veth pair whose W end is named tap0: packets enter W from
an interface exactly as a TAP's do. The guest is configured as roost's
guest init configures a microVM (SOURCE_ADDRESS/30, default route via
RESOLVER_ADDRESS, which is also its resolver).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from network_lab import (
    EGRESS_DECISIONS,
    HERE,
    LabDns,
    LabHost,
    WorkspaceNamespace,
    egress_probes,
    egress_results,
    leftovers,
)

from roost.network.attachment import NetworkBoot, attach, detach, network_available, read_decisions
from roost.network.inner import GUEST_LINK, GUEST_PREFIX, RESOLVER_ADDRESS, SOURCE_ADDRESS
from roost.network.policy import NetworkPolicy, parse_policy, parse_publish
from roost.network.resolver import RESOLVERS_VARIABLE

AVAILABLE, REASON = network_available() if os.geteuid() == 0 else (False, "needs root to build test hosts")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not AVAILABLE, reason=f"workspace networking cannot be tested here: {REASON}"),
]


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@dataclass
class GuestBehindLink:
    """W (the VMM's namespace, with `tap0`) and the guest namespace beyond it."""

    vmm: WorkspaceNamespace = field(default_factory=WorkspaceNamespace)
    guest: str = field(default_factory=lambda: f"roost-t-g{os.getpid() % 10000:04d}{random.randrange(16**4):04x}")

    def __post_init__(self) -> None:
        outer, inner = f"rt{self.guest[-8:]}w", f"rt{self.guest[-8:]}g"
        _run("ip", "netns", "add", self.guest)
        try:
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", outer, "netns", str(self.vmm.pid))
            _run(*self.in_vmm(), "ip", "link", "set", outer, "name", GUEST_LINK)
            _run("ip", "link", "set", inner, "netns", self.guest)
            for command in (
                ("ip", "link", "set", inner, "name", "eth0"),
                ("ip", "addr", "add", f"{SOURCE_ADDRESS}/{GUEST_PREFIX}", "dev", "eth0"),
                ("ip", "link", "set", "eth0", "up"),
                ("ip", "link", "set", "lo", "up"),
                ("ip", "route", "add", "default", "via", RESOLVER_ADDRESS),
            ):
                _run("ip", "netns", "exec", self.guest, *command)
        except BaseException:
            self.close()
            raise

    def in_vmm(self) -> list[str]:
        return ["nsenter", "-t", str(self.vmm.pid), "-U", "-n", "--preserve-credentials"]

    def run(self, *steps: list[Any]) -> list[Any]:
        """`network_client.py` steps run in the guest."""
        command = ["ip", "netns", "exec", self.guest, sys.executable, str(HERE / "network_client.py")]
        client = subprocess.Popen(
            [*command, json.dumps(list(steps))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return WorkspaceNamespace.results(client)

    def close(self) -> None:
        self.vmm.close()  # W goes with its last process, and tap0 (the veth's end) with it
        subprocess.run(["ip", "netns", "del", self.guest], capture_output=True, check=False)


@dataclass
class Served:
    lab: GuestBehindLink
    net_dir: Path
    boot: NetworkBoot

    def decisions(self) -> list[tuple[str | None, int, str, str]]:
        return [(d.name, d.port, d.verdict, d.reason) for d in read_decisions(self.net_dir)]


@pytest.fixture(scope="module")
def test_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    host = LabHost(tmp_path_factory.mktemp("host"), ["allowed.test", "other.test"])
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def served(tmp_path: Path, test_host: LabHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    dns = LabDns(test_host.address)
    monkeypatch.setenv(RESOLVERS_VARIABLE, f"127.0.0.1:{dns.port}")
    made: list[Served] = []

    def serve(policy: NetworkPolicy, ports: tuple[str, ...] = ()) -> Served:
        lab = GuestBehindLink()
        try:
            boot = attach(tmp_path / "network", lab.vmm.pid, policy, [(parse_publish(p), None) for p in ports])
        except BaseException:
            lab.close()
            raise
        made.append(Served(lab, tmp_path / "network", boot))
        return made[-1]

    yield serve
    for one in made:
        detach(one.net_dir, one.boot)
        one.lab.close()
    dns.close()


def test_egress_from_a_guest_behind_the_link_reaches_the_test_host_over_http_https_and_udp(
    served: Any, test_host: LabHost
) -> None:
    ws: Served = served(parse_policy("egress"))
    assert ws.lab.run(*egress_probes(test_host)) == egress_results(test_host)
    assert ws.decisions() == EGRESS_DECISIONS


def test_allowlist_holds_a_guest_behind_the_link_to_its_names(served: Any, test_host: LabHost) -> None:
    ws: Served = served(parse_policy("allowlist", ["allowed.test"]))
    results = ws.lab.run(
        ["resolve", "other.test"],
        ["http", test_host.address, 80, "other.test"],
        ["resolve", "allowed.test"],
        ["http", test_host.address, 80, "allowed.test"],
        ["udp", test_host.address, 7, "ping"],
    )
    assert results == ["NXDOMAIN", "refused", [test_host.address], "host=allowed.test", "ping"]
    assert ws.decisions() == [
        ("other.test", 53, "denied", "name_not_allowed"),
        (None, 80, "denied", "address_not_resolved"),
        ("allowed.test", 53, "allowed", "allowed_name"),
        ("allowed.test", 80, "allowed", "allowed_name"),
        ("allowed.test", 7, "allowed", "allowed_name"),
    ]


def test_the_namespaces_own_addresses_take_only_dns_from_the_guest(served: Any, test_host: LabHost) -> None:
    ws: Served = served(parse_policy("egress"))
    # Something listening on every address of W, as a way around the gateway would need.
    listener = subprocess.Popen(
        [*ws.lab.in_vmm(), sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=HERE,
    )
    try:
        assert listener.stdout is not None and listener.stdout.readline().startswith(b"Serving HTTP")
        results = ws.lab.run(
            ["http", RESOLVER_ADDRESS, 8080, "x"], ["udp", RESOLVER_ADDRESS, 8080, "x"], ["resolve", "allowed.test"]
        )
    finally:
        listener.kill()
        listener.wait()
    assert results == ["refused", "timeout", [test_host.address]]
    assert ws.decisions() == [("allowed.test", 53, "allowed", "egress")]


def _get(port: int) -> bytes:
    """The start of the answer to a GET through the host's loopback port; empty while nothing serves."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /network_lab.py HTTP/1.0\r\n\r\n")
            return sock.recv(64)
    except ConnectionResetError:
        return b""


def test_a_published_port_reaches_a_server_in_the_guest_from_the_hosts_loopback(served: Any) -> None:
    ws: Served = served(parse_policy("off"), ("0:8000",))
    (bound,) = ws.boot.ports
    server = subprocess.Popen(
        ["ip", "netns", "exec", ws.lab.guest, sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=HERE,
    )
    try:
        deadline = time.monotonic() + 10
        while not (answer := _get(bound.host_port)):
            assert time.monotonic() < deadline, "the server in the guest never answered"
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.0 200")
    finally:
        server.kill()
        server.wait()


def test_the_vmm_namespace_carries_the_gateways_rules_for_the_guest_link(served: Any) -> None:
    ws: Served = served(parse_policy("egress"))
    rules = _run(*ws.lab.in_vmm(), "nft", "list", "table", "ip", "roost")
    assert f'iifname "{GUEST_LINK}" ip daddr {RESOLVER_ADDRESS}' in rules and "tproxy to 127.0.0.1:" in rules
    routes = _run(*ws.lab.in_vmm(), "ip", "route", "show", "table", "local")
    assert f"{SOURCE_ADDRESS} dev {GUEST_LINK}" in routes and "local default dev lo" in routes


def test_closing_the_vmms_namespace_leaves_no_namespace_or_link() -> None:
    lab = GuestBehindLink()
    names = (f"rt{lab.guest[-8:]}w", f"rt{lab.guest[-8:]}g")
    lab.close()
    assert leftovers(lab.guest, names) == []
