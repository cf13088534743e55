"""What a network policy costs a sandbox workspace: create p50 with the `egress` policy (the gateway
started and attached) < 400 ms, and `ws.exec(["true"])` round trip p50 with it < 8 ms (unchanged:
the agent's channel never goes through the gateway).

The default create (policy off, no gateway) keeps its own target in sandbox.py; skipped where
the sandbox cannot run, the image is not cached, or this host cannot enforce policies.
"""

from __future__ import annotations

import time

from benchmarks._harness import ENV, Result, Settings, measured, skipped, summarize
from benchmarks.sandbox import BACKEND, warm_home, why_not

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
    from roost import Roost

    reason = _why_not()
    if reason:
        return skipped(CREATE_DESCRIPTION, reason)
    runs, warmup = settings.n(20, 3), settings.n(2, 1)
    samples = []
    with warm_home() as home, Roost(home=home, backend=BACKEND) as roost:
        for index in range(warmup + runs):
            start = time.perf_counter()
            ws = roost.create_workspace(ENV, network_policy="egress", ephemeral=False)
            elapsed = (time.perf_counter() - start) * 1000
            ws.delete(force=True)
            if index >= warmup:
                samples.append(elapsed)
    return measured(CREATE_DESCRIPTION, "ms", summarize(samples), "p50", "<", 400.0, runs=runs)


def exec_round_trip(settings: Settings) -> Result:
    from roost import Roost

    reason = _why_not()
    if reason:
        return skipped(EXEC_DESCRIPTION, reason)
    iterations = settings.n(200, 30)
    samples = []
    with warm_home() as home, Roost(home=home, backend=BACKEND) as roost:
        ws = roost.create_workspace(ENV, network_policy="egress")
        try:
            for _ in range(settings.n(20, 5)):
                ws.exec(["true"])
            for _ in range(iterations):
                start = time.perf_counter()
                result = ws.exec(["true"])
                samples.append((time.perf_counter() - start) * 1000)
                if result.exit_code != 0:
                    raise RuntimeError(f"`true` exited {result.exit_code}: {result.stderr}")
        finally:
            ws.delete(force=True)
    return measured(EXEC_DESCRIPTION, "ms", summarize(samples), "p50", "<", 8.0, iterations=iterations)
