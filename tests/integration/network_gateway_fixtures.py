"""The network gateway's test fixtures: a test host, a test DNS, and workspace namespaces with a gateway attached.

The integration conftest imports the fixtures, so every module there may use them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from network_lab import LabDns, LabHost, WorkspaceNamespace

from roost.network import Substitution
from roost.network.attachment import NetworkBoot, attach, detach, network_available, read_decisions, update
from roost.network.policy import NetworkPolicy, parse_publish
from roost.network.resolver import RESOLVERS_VARIABLE

AVAILABLE, REASON = network_available() if os.geteuid() == 0 else (False, "needs root to build test hosts")
NEEDS_NETWORK = [
    pytest.mark.integration,
    pytest.mark.skipif(not AVAILABLE, reason=f"workspace networking cannot be tested here: {REASON}"),
]

NAMES = ["allowed.test", "other.test"]


@pytest.fixture(scope="module")
def test_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHost]:
    host = LabHost(tmp_path_factory.mktemp("host"), NAMES)
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def test_dns(test_host: LabHost, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabDns]:
    dns = LabDns(test_host.address)
    monkeypatch.setenv(RESOLVERS_VARIABLE, f"127.0.0.1:{dns.port}")
    yield dns
    dns.close()


@dataclass
class Attached:
    """A workspace namespace with a gateway attached."""

    net_dir: Path
    workspace: WorkspaceNamespace
    boot: NetworkBoot

    def decisions(self, protocol: str | None = None) -> list[tuple[str | None, int, str, str]]:
        return [
            (d.name, d.port, d.verdict, d.reason)
            for d in read_decisions(self.net_dir)
            if protocol is None or d.protocol == protocol
        ]

    def set(self, policy: NetworkPolicy, ports: Sequence[str] = ()) -> None:
        self.boot = update(self.net_dir, self.boot, policy, [(parse_publish(p), None) for p in ports])


StartWorkspace = Callable[..., Attached]


@pytest.fixture
def workspace(tmp_path: Path, test_dns: LabDns) -> Iterator[StartWorkspace]:
    """Call with a policy (and ports): a workspace namespace behind a gateway; all stopped at teardown."""
    made: list[Attached] = []

    def start(policy: NetworkPolicy, ports: Sequence[str] = (), substitutions: Sequence[Substitution] = ()) -> Attached:
        net_dir = tmp_path / f"network-{len(made)}"
        namespace = WorkspaceNamespace()
        try:
            boot = attach(net_dir, namespace.pid, policy, [(parse_publish(p), None) for p in ports], substitutions)
        except BaseException:
            namespace.close()
            raise
        made.append(Attached(net_dir, namespace, boot))
        return made[-1]

    yield start
    for attached in made:
        detach(attached.net_dir, attached.boot)
        attached.workspace.close()
