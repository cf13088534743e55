"""The network gateway against real traffic that never leaves the machine.

A test host lives in a namespace of its own behind a veth pair (HTTP,
HTTPS, UDP echo), a test DNS on 127.0.0.1 answers `*.test` with its
address, and a "workspace" is a user-owned network namespace with only lo,
as a sandbox workspace's is. Traffic is driven from inside it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from network_gateway_fixtures import NAMES, NEEDS_NETWORK, Attached, StartWorkspace
from network_lab import EGRESS_DECISIONS, LabDns, LabHost, egress_probes, egress_results, leftovers

from roost.errors import PortInUse
from roost.network.attachment import (
    attach,
    detach,
    ensure_ports_free,
)
from roost.network.policy import parse_policy, parse_publish

pytestmark = NEEDS_NETWORK


def test_egress_reaches_the_test_host_over_http_https_and_udp(workspace: StartWorkspace, test_host: LabHost) -> None:
    ws = workspace(parse_policy("egress"))
    assert ws.workspace.run(*egress_probes(test_host)) == egress_results(test_host)
    assert ws.decisions() == EGRESS_DECISIONS


def test_allowlist_admits_an_allowed_name_and_refuses_a_denied_one_which_never_resolves(
    workspace: StartWorkspace, test_host: LabHost, test_dns: LabDns
) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    results = ws.workspace.run(
        ["resolve", "other.test"],
        ["resolve", "allowed.test"],
        ["https", test_host.address, "allowed.test", str(test_host.cert)],
        ["udp", test_host.address, 7, "ping"],
    )
    assert results == ["NXDOMAIN", [test_host.address], "host=allowed.test", "ping"]
    assert "other.test" not in test_dns.queries  # a denied name is not even asked upstream
    assert ws.decisions() == [
        ("other.test", 53, "denied", "name_not_allowed"),
        ("allowed.test", 53, "allowed", "allowed_name"),
        ("allowed.test", 443, "allowed", "allowed_name"),
        ("allowed.test", 7, "allowed", "allowed_name"),
    ]


def test_allowlist_refuses_tcp_and_udp_to_an_address_roost_did_not_resolve(
    workspace: StartWorkspace, test_host: LabHost
) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    results = ws.workspace.run(["http", test_host.address, 80, "allowed.test"], ["udp", test_host.address, 7, "ping"])
    assert results == ["refused", "timeout"]
    assert ws.decisions() == [
        (None, 80, "denied", "address_not_resolved"),
        (None, 7, "denied", "address_not_resolved"),
    ]


def test_allowlist_refuses_a_port_the_entry_does_not_allow(workspace: StartWorkspace, test_host: LabHost) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test:443"]))
    results = ws.workspace.run(["resolve", "allowed.test"], ["udp", test_host.address, 7, "ping"])
    assert results == [[test_host.address], "timeout"]
    assert ws.decisions("udp") == [("allowed.test", 7, "denied", "port_not_allowed")]


def test_an_allowed_address_asked_for_a_foreign_name_is_refused(workspace: StartWorkspace, test_host: LabHost) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    results = ws.workspace.run(
        ["resolve", "allowed.test"],
        ["https", test_host.address, "other.test", str(test_host.cert)],
        ["http", test_host.address, 80, "other.test"],
        ["http", test_host.address, 80, "allowed.test"],
    )
    assert results == [[test_host.address], "refused", "refused", "host=allowed.test"]
    assert ws.decisions("tcp") == [
        ("other.test", 443, "denied", "sni_mismatch"),
        ("other.test", 80, "denied", "sni_mismatch"),
        ("allowed.test", 80, "allowed", "allowed_name"),
    ]


def test_a_request_that_pauses_after_its_first_byte_is_still_held_to_its_name(
    workspace: StartWorkspace, test_host: LabHost
) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    results = ws.workspace.run(
        ["resolve", "allowed.test"],
        ["http_paused", test_host.address, 80, "other.test", 0.6],  # past the gateway's wait for a name
        ["http_paused", test_host.address, 80, "allowed.test", 0.6],
    )
    assert results == [[test_host.address], "refused", "host=allowed.test"]
    assert ws.decisions("tcp") == [
        ("other.test", 80, "denied", "sni_mismatch"),
        ("allowed.test", 80, "allowed", "allowed_name"),
    ]


def test_a_client_that_says_nothing_first_hears_its_server_and_is_still_held_to_its_name(
    workspace: StartWorkspace, test_host: LabHost
) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    results = ws.workspace.run(
        ["resolve", "allowed.test"],
        ["listen_first", test_host.address, 5002, 65536],  # a server that speaks first is heard at once
        ["http_silent", test_host.address, 80, "other.test", 0.6],  # waiting out the sniff changes nothing
        ["http_silent", test_host.address, 80, "allowed.test", 0.6],
    )
    assert results == [[test_host.address], 65536, "refused", "host=allowed.test"]
    assert ws.decisions("tcp") == [
        ("allowed.test", 5002, "allowed", "allowed_name"),
        ("other.test", 80, "denied", "sni_mismatch"),
        ("allowed.test", 80, "allowed", "allowed_name"),
    ]


def test_a_policy_change_takes_effect_live_in_the_same_gateway(workspace: StartWorkspace, test_host: LabHost) -> None:
    ws = workspace(parse_policy("egress"))
    pid = ws.boot.gateway_pid
    assert ws.workspace.run(["resolve", "other.test"]) == [[test_host.address]]
    ws.set(parse_policy("allowlist", ["allowed.test"]))
    assert ws.workspace.run(["resolve", "other.test"], ["http", test_host.address, 80, "other.test"]) == [
        "NXDOMAIN",
        "refused",
    ]
    ws.set(parse_policy("egress"))
    assert ws.workspace.run(["http", test_host.address, 80, "other.test"]) == ["host=other.test"]
    assert ws.boot.gateway_pid == pid and ws.boot.is_running()
    assert ws.boot.policy == parse_policy("egress")


def test_dns_over_tcp_follows_the_policy_too(workspace: StartWorkspace, test_host: LabHost) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    assert ws.workspace.run(["resolve_tcp", "allowed.test"], ["resolve_tcp", "other.test"]) == [
        [test_host.address],
        "NXDOMAIN",
    ]


def test_a_udp_flow_the_new_policy_no_longer_admits_is_cut(workspace: StartWorkspace, test_host: LabHost) -> None:
    ws = workspace(parse_policy("egress"))
    client = ws.workspace.start(["udp_twice", test_host.address, 7, "ping", 1.0])
    time.sleep(0.5)  # the first exchange is done well within this (asserted below)
    ws.set(parse_policy("allowlist", ["allowed.test"]))
    assert ws.workspace.results(client) == [["ping", "timeout"]]
    assert ws.decisions("udp") == [(None, 7, "allowed", "egress"), (None, 7, "denied", "address_not_resolved")]


def test_the_hosts_own_addresses_are_refused_under_egress(workspace: StartWorkspace, test_host: LabHost) -> None:
    listener = socket.create_server(("0.0.0.0", 0))  # reachable from the host's side of the link
    port = listener.getsockname()[1]
    try:
        ws = workspace(parse_policy("egress"))
        results = ws.workspace.run(["http", test_host.host_side, port, "x"], ["udp", test_host.host_side, port, "x"])
    finally:
        listener.close()
    assert results == ["refused", "timeout"]
    assert ws.decisions() == [(None, port, "denied", "host_local"), (None, port, "denied", "host_local")]


def test_ipv6_is_refused_and_logged_under_every_policy(workspace: StartWorkspace) -> None:
    if not Path("/proc/net/if_inet6").exists():
        pytest.skip("this kernel has no IPv6")
    ws = workspace(parse_policy("egress"))
    assert ws.workspace.run(["http", "2001:db8::10", 80, "x"], ["udp", "2001:db8::10", 53, "x"]) == [
        "refused",
        "timeout",
    ]
    assert ws.decisions() == [(None, 80, "denied", "ipv6"), (None, 53, "denied", "ipv6")]


def test_the_workspaces_own_loopback_stays_its_own(workspace: StartWorkspace) -> None:
    ws = workspace(parse_policy("egress"))
    assert ws.workspace.run(["http", "127.0.0.1", 80, "x"]) == ["refused"]  # nothing listens in the workspace
    assert ws.decisions() == []


def _serve_inside(ws: Attached, port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [
            "nsenter",
            "-t",
            str(ws.workspace.pid),
            "-U",
            "-n",
            "--preserve-credentials",
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).parent,
    )
    deadline = time.monotonic() + 10
    while ws.workspace.run(["http", "127.0.0.1", port, "x"]) == ["refused"]:
        assert time.monotonic() < deadline, "the server inside did not start"
        time.sleep(0.1)
    return server


def _get(address: str, port: int) -> bytes:
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(b"GET /network_lab.py HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_published_port_answers_on_loopback_and_not_on_the_hosts_other_addresses(
    workspace: StartWorkspace, test_host: LabHost
) -> None:
    ws = workspace(parse_policy("off"), ["0:8000"])
    (bound,) = ws.boot.ports
    assert bound.host_address == "127.0.0.1" and bound.guest_port == 8000 and bound.host_port > 0
    server = _serve_inside(ws, 8000)
    try:
        assert _get("127.0.0.1", bound.host_port).startswith(b"HTTP/1.0 200")
        with pytest.raises(ConnectionRefusedError):
            _get(test_host.host_side, bound.host_port)
    finally:
        server.kill()
        server.wait()


def test_ports_change_live_and_a_taken_port_is_port_in_use_with_nothing_changed(workspace: StartWorkspace) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    taken_port = taken.getsockname()[1]
    try:
        with pytest.raises(PortInUse) as caught:
            ensure_ports_free([parse_publish(f"{taken_port}:80")])
        assert caught.value.code == "port_in_use"
        ws = workspace(parse_policy("egress"), ["0:8000"])
        before = ws.boot
        with pytest.raises(PortInUse):
            ws.set(parse_policy("egress"), ["0:8000", f"{taken_port}:81"])
        assert ws.boot == before
        ws.set(parse_policy("egress"), [f"{before.ports[0].host_port}:8000", "0:9000"])
        assert ws.boot.ports[0] == before.ports[0] and ws.boot.ports[1].guest_port == 9000
    finally:
        taken.close()


def test_a_held_host_port_can_be_led_to_another_guest_port_live(workspace: StartWorkspace) -> None:
    ws = workspace(parse_policy("off"), ["0:8000"])
    (before,) = ws.boot.ports
    ws.set(parse_policy("off"), [f"{before.host_port}:9000"])  # its own port: not "in use"
    assert [(p.host_port, p.guest_port) for p in ws.boot.ports] == [(before.host_port, 9000)]
    server = _serve_inside(ws, 9000)
    try:
        assert _get("127.0.0.1", before.host_port).startswith(b"HTTP/1.0 200")
    finally:
        server.kill()
        server.wait()


def _inner_helpers(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(word.endswith(b"roost/network/inner.py") for word in words) and str(pid).encode() in words:
            found.append(int(entry.name))
    return found


def test_detach_frees_the_ports_and_leaves_no_process(workspace: StartWorkspace) -> None:
    ws = workspace(parse_policy("egress"), ["0:8000"])
    port = ws.boot.ports[0].host_port
    assert _inner_helpers(ws.workspace.pid)
    started = time.monotonic()
    detach(ws.net_dir, ws.boot)
    assert time.monotonic() - started < 2
    assert not ws.boot.is_running()
    assert _inner_helpers(ws.workspace.pid) == []
    ensure_ports_free([parse_publish(f"{port}:8000")])
    detach(ws.net_dir, ws.boot)  # again: nothing to do


def test_the_gateway_stops_by_itself_when_the_workspace_is_gone(workspace: StartWorkspace) -> None:
    ws = workspace(parse_policy("egress"))
    ws.workspace.close()
    deadline = time.monotonic() + 5
    while ws.boot.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ws.boot.is_running()


def test_closing_a_test_host_leaves_no_namespace_or_link(tmp_path: Path) -> None:
    host = LabHost(tmp_path, NAMES)
    names = (host.netns, host.host_link, host.inner_link)
    assert leftovers(host.netns, names[1:]) != []
    host.close()
    assert leftovers(host.netns, names[1:]) == []


def test_root_inside_the_workspace_cannot_widen_the_policy_by_rewriting_its_rules(
    workspace: StartWorkspace, test_host: LabHost
) -> None:
    ws = workspace(parse_policy("allowlist", ["allowed.test"]))
    inside = ["nsenter", "-t", str(ws.workspace.pid), "-U", "-n", "--preserve-credentials"]
    subprocess.run([*inside, "nft", "flush", "ruleset"], check=True)
    assert ws.workspace.run(["http", test_host.address, 80, "other.test"]) == ["refused"]
    subprocess.run([*inside, "ip", "route", "del", "local", "default"], check=True)
    assert ws.workspace.run(["http", test_host.address, 80, "other.test"]) == ["refused"]
    assert ws.decisions() == []  # nothing reached the gateway, so nothing went out


def test_attaching_again_stops_the_gateway_left_serving_the_same_directory(
    workspace: StartWorkspace, test_host: LabHost
) -> None:
    ws = workspace(parse_policy("egress"))
    first = ws.boot
    ws.boot = attach(ws.net_dir, ws.workspace.pid, parse_policy("allowlist", ["allowed.test"]), [])
    assert not first.is_running() and ws.boot.is_running()
    assert ws.workspace.run(["resolve", "other.test"], ["resolve", "allowed.test"]) == ["NXDOMAIN", [test_host.address]]
