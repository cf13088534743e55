"""What a network policy costs a sandbox workspace: create p50 with the `egress` policy (the gateway
started and attached) < 400 ms, and `ws.exec(["true"])` round trip p50 with it < 8 ms (unchanged:
the agent's channel never goes through the gateway).

The default create (policy off, no gateway) keeps its own target in sandbox.py; skipped where
the sandbox cannot run, the image is not cached, or this host cannot enforce policies.
"""

from __future__ import annotations

from benchmarks._harness import Result, Settings, measured, skipped, summarize
from benchmarks.sandbox import create_samples, exec_samples, why_not

CREATE_DESCRIPTION = "SDK create_workspace('debian:12', network_policy='egress'), sandbox backend, warm image cache"
EXEC_DESCRIPTION = 'SDK ws.exec(["true"]) round trip with the egress policy on, sandbox backend'


def _why_not() -> str | None:
    from roost.network.attachment import network_available

    reason = why_not()
    if reason:
        return reason
    ok, why = network_available()
    return None if ok else f"network policies cannot be enforced here: {why}"


def create(settings: Settings) -> Result:
    reason = _why_not()
    if reason:
        return skipped(CREATE_DESCRIPTION, reason)
    samples = create_samples(settings, network_policy="egress")
    return measured(CREATE_DESCRIPTION, "ms", summarize(samples), "p50", "<", 400.0, runs=len(samples))


def exec_round_trip(settings: Settings) -> Result:
    reason = _why_not()
    if reason:
        return skipped(EXEC_DESCRIPTION, reason)
    samples = exec_samples(settings, network_policy="egress")
    return measured(EXEC_DESCRIPTION, "ms", summarize(samples), "p50", "<", 8.0, iterations=len(samples))
