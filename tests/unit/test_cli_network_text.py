"""How a workspace's network reads in the CLI's text output: status lines and decision log rows."""

from __future__ import annotations

from roost.cli.commands.network import _row, network_lines
from roost.models import NetworkDecision, NetworkInfo, PortInfo


def test_an_allowlist_shows_its_entries_and_each_port_with_its_owner() -> None:
    info = NetworkInfo(
        policy="allowlist",
        allow=("pypi.org:443", "*.example.com"),
        ports=(PortInfo("127.0.0.1", 40001, 8000), PortInfo("127.0.0.2", 18000, 9000, "web")),
        enforced=True,
        detail="roost's gateway (pid 7) holds it",
    )
    assert network_lines(info) == [
        "network  allowlist (enforced: roost's gateway (pid 7) holds it)",
        "  allow  pypi.org:443, *.example.com",
        "  port   127.0.0.1:40001 -> 8000",
        "  port   127.0.0.2:18000 -> 9000 (service web)",
    ]


def test_a_stopped_workspace_shows_ports_whose_host_port_is_not_chosen_yet() -> None:
    info = NetworkInfo(
        "egress", (), (PortInfo("127.0.0.1", 0, 8000),), False, "no gateway runs: the workspace is stopped"
    )
    assert network_lines(info) == [
        "network  egress (not enforced: no gateway runs: the workspace is stopped)",
        "  port   127.0.0.1:any -> 8000",
    ]


def test_a_lookup_row_names_the_name_and_a_connection_row_its_address_and_port() -> None:
    lookup = NetworkDecision("2026-01-02T03:04:05.678Z", "evil.test", "", 53, "dns", "denied", "name_not_allowed")
    flow = NetworkDecision("2026-01-02T03:04:06.000Z", "pypi.org", "10.0.0.9", 443, "tcp", "allowed", "allowed_name")
    bare = NetworkDecision("2026-01-02T03:04:07.000Z", None, "10.0.0.9", 7, "udp", "denied", "address_not_resolved")
    assert _row(lookup) == ["2026-01-02 03:04:05", "denied", "dns", "evil.test", "name_not_allowed"]
    assert _row(flow)[3] == "pypi.org (10.0.0.9):443"
    assert _row(bare)[3] == "10.0.0.9:7"
