"""SDK exec round trip on the mock backend: `ws.exec(["true"])`, target p50 < 5 ms."""

from __future__ import annotations

import time

from benchmarks._harness import BACKEND, ENV, Result, Settings, measured, summarize, temp_home

DESCRIPTION = 'SDK ws.exec(["true"]) round trip, mock backend'


def run(settings: Settings) -> Result:
    from roost import Roost

    iterations = settings.n(200, 30)
    with temp_home() as home, Roost(home=home, backend=BACKEND) as roost:
        ws = roost.create_workspace(ENV)
        try:
            for _ in range(settings.n(20, 5)):
                ws.exec(["true"])
            samples = []
            for _ in range(iterations):
                start = time.perf_counter()
                result = ws.exec(["true"])
                samples.append((time.perf_counter() - start) * 1000)
                if result.exit_code != 0:
                    raise RuntimeError(f"`true` exited {result.exit_code}")
        finally:
            ws.delete(force=True)
    return measured(DESCRIPTION, "ms", summarize(samples), "p50", "<", 5.0, iterations=iterations)
