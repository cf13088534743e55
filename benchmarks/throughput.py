"""Exec output throughput: `head -c 200M /dev/zero` streamed through `on_output`, target >= 300 MB/s.

MB here is 10^6 bytes; the MiB/s figure is reported beside it.
"""

from __future__ import annotations

import time

from benchmarks._harness import BACKEND, ENV, Result, Settings, measured, summarize, temp_home

DESCRIPTION = 'SDK ws.exec(["head", "-c", "200M", "/dev/zero"], max_output_bytes=None, on_output=count), mock backend'
SIZE_ARG = "200M"
SIZE_BYTES = 200 * 1024 * 1024


def run(settings: Settings) -> Result:
    from roost import Roost

    runs = settings.n(3, 1)
    rates: list[float] = []
    seconds: list[float] = []
    with temp_home() as home, Roost(home=home, backend=BACKEND) as roost:
        ws = roost.create_workspace(ENV)
        try:
            ws.exec(["head", "-c", "8M", "/dev/zero"], max_output_bytes=None)  # warm-up
            for _ in range(runs):
                received = 0

                def count(channel: str, data: bytes) -> None:
                    nonlocal received
                    if channel == "stdout":
                        received += len(data)

                start = time.perf_counter()
                result = ws.exec(["head", "-c", SIZE_ARG, "/dev/zero"], max_output_bytes=None, on_output=count)
                elapsed = time.perf_counter() - start
                if result.exit_code != 0 or received != SIZE_BYTES:
                    raise RuntimeError(f"exit {result.exit_code}, received {received} of {SIZE_BYTES} bytes")
                seconds.append(elapsed)
                rates.append(SIZE_BYTES / 1e6 / elapsed)
        finally:
            ws.delete(force=True)
    stats = summarize(rates, digits=1)
    return measured(
        DESCRIPTION,
        "MB/s (1 MB = 10^6 bytes)",
        stats,
        "median",
        ">=",
        300.0,
        runs=runs,
        bytes_per_run=SIZE_BYTES,
        median_mib_per_s=round(SIZE_BYTES / 2**20 / sorted(seconds)[len(seconds) // 2], 1),
        median_seconds=round(sorted(seconds)[len(seconds) // 2], 3),
    )
