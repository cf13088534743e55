"""Workspace networking through the gateway: TCP throughput (>= 1 Gbit/s) and connection setup (< 5 ms over direct, p50).

Runs against the tests' network lab (tests/integration/network_lab.py): a
test host in a namespace of its own behind a veth pair, a test DNS, and a
user-owned network namespace with only lo as the workspace, its gateway
attached by `roost.network.attachment.attach`. Needs root (to build the
lab) and nftables with TPROXY; skipped otherwise.

- throughput: one TCP stream from the test host into the workspace for a
  few seconds, under `egress` and under `allowlist` (the test host's name
  allowed and resolved first); the same stream straight from the host's
  namespace is reported beside it;
- setup: connect + one HTTP exchange, p50 under `allowlist` minus p50 of
  the same from the host's namespace (no gateway).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._harness import Result, Settings, log, measured, skipped, summarize

LAB_DIR = Path(__file__).resolve().parents[1] / "tests" / "integration"
THROUGHPUT_DESCRIPTION = "TCP download from a test host into a workspace through the gateway (Gbit/s, median of runs)"
SETUP_DESCRIPTION = "TCP connect + one HTTP exchange through the gateway under allowlist, p50 minus direct p50 (ms)"


def benchmarks() -> dict[str, tuple[str, Callable[[Settings], Result]]]:
    return {
        "network_tcp_throughput_egress": (THROUGHPUT_DESCRIPTION + ", egress", lambda s: throughput(s, "egress")),
        "network_tcp_throughput_allowlist": (
            THROUGHPUT_DESCRIPTION + ", allowlist",
            lambda s: throughput(s, "allowlist"),
        ),
        "network_connection_setup_allowlist": (SETUP_DESCRIPTION, setup_overhead),
    }


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to build the network lab (namespaces, veth)"
    from roost.network.attachment import network_available

    ok, reason = network_available()
    return None if ok else reason


@contextmanager
def _lab(mode: str) -> Iterator[tuple[Any, Any]]:
    """The test host and a workspace namespace with a gateway under `mode` (allowlist: the test host's name)."""
    sys.path.insert(0, str(LAB_DIR))  # the lab is test code; benchmarks borrow it rather than copy it
    from network_lab import LabDns, LabHost, WorkspaceNamespace

    from roost.network.attachment import attach, detach
    from roost.network.policy import parse_policy
    from roost.network.resolver import RESOLVERS_VARIABLE

    directory = Path(tempfile.mkdtemp(prefix="roost-bench-net-"))
    host = LabHost(directory, ["allowed.test"])
    dns = LabDns(host.address)
    os.environ[RESOLVERS_VARIABLE] = f"127.0.0.1:{dns.port}"
    workspace = WorkspaceNamespace()
    boot = None
    try:
        policy = parse_policy(mode, ["allowed.test"] if mode == "allowlist" else [])
        boot = attach(directory / "network", workspace.pid, policy, [])
        yield host, workspace
    finally:
        detach(directory / "network", boot)
        workspace.close()
        dns.close()
        host.close()
        os.environ.pop(RESOLVERS_VARIABLE, None)


def _direct(*steps: list[Any]) -> list[Any]:
    """The same client steps from the host's own namespace: no gateway in the way."""
    command = [sys.executable, str(LAB_DIR / "network_client.py"), json.dumps(list(steps))]
    result: list[Any] = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return result


def throughput(settings: Settings, mode: str) -> Result:
    description = f"{THROUGHPUT_DESCRIPTION}, {mode}"
    reason = _unavailable()
    if reason is not None:
        return skipped(description, reason)
    runs, seconds = settings.n(3, 1), settings.n(3.0, 1.0)
    with _lab(mode) as (host, workspace):
        workspace.run(["resolve", "allowed.test"])
        rates = [workspace.run(["download", host.address, 5002, seconds])[0] for _ in range(runs)]
        direct = _direct(["download", host.address, 5002, seconds])[0]
    log(f"network {mode}: {rates} Gbit/s through the gateway, {direct:.2f} direct")
    return measured(
        description,
        "Gbit/s",
        summarize(rates, digits=2),
        "median",
        ">=",
        1.0,
        runs=runs,
        direct_gbit_s=round(direct, 2),
    )


def setup_overhead(settings: Settings) -> Result:
    reason = _unavailable()
    if reason is not None:
        return skipped(SETUP_DESCRIPTION, reason)
    count = settings.n(200, 20)
    with _lab("allowlist") as (host, workspace):
        workspace.run(["resolve", "allowed.test"])
        through = workspace.run(["connect_ms", host.address, 80, count])[0]
        direct = _direct(["connect_ms", host.address, 80, count])[0]
    gateway, plain = summarize(through), summarize(direct)
    stats = {"p50": round(gateway["p50"] - plain["p50"], 3)}
    return measured(
        SETUP_DESCRIPTION, "ms", stats, "p50", "<", 5.0, gateway_ms=gateway, direct_ms=plain, connections=count
    )
