"""Service latencies through the SDK, on the mock backend and (when it can run here) the sandbox:

- start to ready, with a file probe that passes at once (`touch .rN; sleep 1000`, probed every 10 ms):
  target p50 < 100 ms;
- stop of a service that obeys TERM (`sleep 1000`): target p50 < 200 ms;
- stop of a service whose process already exited (`true`, stopped once its exit is recorded):
  target p50 < 20 ms.

The sandbox runs use a temporary home linked to the shared, warm image cache
(see `benchmarks/sandbox.py`) and are skipped, with the reason, when it cannot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from benchmarks import sandbox
from benchmarks._harness import Result, Settings, measured, skipped, summarize

if TYPE_CHECKING:
    from roost import Workspace

BACKENDS = ("mock", "sandbox")
START_DESCRIPTION = "SDK services.start to ready, file probe ready at once (10 ms interval), {backend} backend"
STOP_TERM_DESCRIPTION = "SDK services.stop of a TERM-respecting service (sleep 1000), {backend} backend"
STOP_EXITED_DESCRIPTION = "SDK services.stop of a service whose process already exited, {backend} backend"
EXIT_RECORDED_WITHIN_S = 5.0

Bench = Callable[[Settings], Result]


def _start_to_ready(ws: Workspace, index: int) -> float:
    from roost.client import Readiness

    marker = f".r{index}"  # a fresh file each time, so the probe waits for this run's touch
    began = time.perf_counter()
    service = ws.services.start("bench", f"touch {marker}; sleep 1000", ready=Readiness(file=marker, interval_ms=10))
    elapsed = (time.perf_counter() - began) * 1000
    if service.state != "ready":
        raise RuntimeError(f"the service did not get ready: {service.reason}")
    ws.services.stop("bench", timeout=2.0)
    return elapsed


def _stop_term(ws: Workspace, index: int) -> float:
    ws.services.start("bench", ["sleep", "1000"])
    began = time.perf_counter()
    stopped = ws.services.stop("bench", timeout=10.0)
    elapsed = (time.perf_counter() - began) * 1000
    if stopped.signal != "SIGTERM":
        raise RuntimeError(f"sleep should have ended by SIGTERM, not {stopped.signal}")
    return elapsed


def _stop_exited(ws: Workspace, index: int) -> float:
    ws.services.start("bench", ["true"])
    deadline = time.monotonic() + EXIT_RECORDED_WITHIN_S
    while ws.services.status("bench").state in ("starting", "ready"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"`true` was not seen to exit within {EXIT_RECORDED_WITHIN_S}s")
        time.sleep(0.005)
    began = time.perf_counter()
    ws.services.stop("bench", timeout=10.0)
    return (time.perf_counter() - began) * 1000


def _bench(backend: str, description: str, sample: Callable[[Workspace, int], float], target_ms: float) -> Bench:
    def run(settings: Settings) -> Result:
        reason = sandbox.why_not_on(backend)
        if reason:
            return skipped(description, reason)
        runs, warmup = settings.n(30, 5), settings.n(3, 1)
        with sandbox.workspace_on(backend) as ws:
            samples = [sample(ws, index) for index in range(warmup + runs)][warmup:]
        return measured(description, "ms", summarize(samples), "p50", "<", target_ms, runs=runs)

    return run


def benchmarks() -> dict[str, tuple[str, Bench]]:
    """Every service benchmark by name, for `benchmarks.__main__.BENCHMARKS`."""
    table: dict[str, tuple[str, Bench]] = {}
    for backend in BACKENDS:
        for name, template, sample, target in (
            ("service_start_to_ready", START_DESCRIPTION, _start_to_ready, 100.0),
            ("service_stop_term", STOP_TERM_DESCRIPTION, _stop_term, 200.0),
            ("service_stop_exited", STOP_EXITED_DESCRIPTION, _stop_exited, 20.0),
        ):
            description = template.format(backend=backend)
            table[f"{name}_{backend}"] = (description, _bench(backend, description, sample, target))
    return table
