"""PTY shell benchmarks through the SDK, on the mock backend and (when it can run here) the sandbox:

- write -> read echo latency: `ws.shells.write(sh, "echo x")`, then reads from the cursor until
  the output line `x` appears: target p50 < 10 ms;
- PTY output throughput into the agent's ring: `head -c 200000000 /dev/zero` in the shell,
  bytes that reached the ring over the time until the prompt returned: target >= 50 MB/s;
- run round trip: `ws.shells.run(sh, "true")` (type the line, wait in the agent until its prompt
  mark is back, read its output and status): target p50 < 20 ms;
- 50 idle shells in one workspace (mock): growth of the agent's VmRSS (the agent pid is the
  workspace record's `boot.agent_pid`): target < 30 MiB.

The sandbox runs use a temporary home linked to the shared, warm image cache
(see `benchmarks/sandbox.py`) and are skipped, with the reason, when it cannot.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from benchmarks import sandbox
from benchmarks._harness import ENV, Result, Settings, measured, rss_mib, skipped, summarize

if TYPE_CHECKING:
    from roost import Workspace

BACKENDS = ("mock", "sandbox")
ECHO_DESCRIPTION = "SDK shells.write('echo x') until the output line 'x' is read back, {backend} backend"
THROUGHPUT_DESCRIPTION = "PTY output into the shell ring buffer (head -c 200 MB of zeros), {backend} backend"
RUN_DESCRIPTION = "SDK shells.run('true') until its prompt is back with its status, {backend} backend"
RSS_DESCRIPTION = "agent VmRSS growth with 50 idle shells open in one workspace, mock backend"

WAIT_S = 30.0  # a deadline on every wait, so a broken shell fails the benchmark instead of hanging it
ECHOED_X = re.compile(r"[\r\n]x\r\n")  # the output line, not the typed `echo x` the terminal echoes
PROMPT_END = ("# ", "$ ")
FLOOD_BYTES = 200_000_000
IDLE_SHELLS = 50

Bench = Callable[[Settings], Result]


def _prompt(ws: Workspace, shell: str, cursor: int) -> int:
    """Wait until the shell shows a prompt after `cursor`; return the end of its output."""
    deadline = time.monotonic() + WAIT_S
    while True:
        out = ws.shells.read(shell, cursor=cursor, max_bytes=1 << 20)
        if out.data.endswith(PROMPT_END):
            return out.end
        if time.monotonic() > deadline:
            raise RuntimeError(f"no prompt within {WAIT_S}s; the shell showed {out.data[-200:]!r}")
        time.sleep(0.001)


def _echo_round_trip(ws: Workspace, shell: str, cursor: int) -> float:
    """Milliseconds from writing `echo x` to reading its output line."""
    seen = ""
    began = time.perf_counter()
    ws.shells.write(shell, "echo x")
    deadline = time.monotonic() + WAIT_S
    while not ECHOED_X.search(seen):
        out = ws.shells.read(shell, cursor=cursor)
        seen += out.data
        cursor = out.next_cursor
        if time.monotonic() > deadline:
            raise RuntimeError(f"`echo x` did not come back within {WAIT_S}s: {seen[-200:]!r}")
    return (time.perf_counter() - began) * 1000


def _echo_steps(ws: Workspace, shell: str) -> Callable[[], float]:
    """Each step: `echo x` until its line is read back (ms), then wait for the prompt to type the next."""
    cursor = _prompt(ws, shell, 0)

    def step() -> float:
        nonlocal cursor
        elapsed = _echo_round_trip(ws, shell, cursor)
        cursor = _prompt(ws, shell, cursor)  # type the next line at a prompt, as a person would
        return elapsed

    return step


def _run_steps(ws: Workspace, shell: str) -> Callable[[], float]:
    """Each step: `shells.run(shell, "true")`, which must end by command_done with exit 0 (ms)."""

    def step() -> float:
        began = time.perf_counter()
        out = ws.shells.run(shell, "true", timeout_ms=int(WAIT_S * 1000))
        elapsed = (time.perf_counter() - began) * 1000
        if (out.ended_by, out.exit_code) != ("command_done", 0):
            raise RuntimeError(f"`true` ended by {out.ended_by} with {out.exit_code}: {out.data[-200:]!r}")
        return elapsed

    return step


def _latency(
    backend: str, description: str, target_ms: float, steps: Callable[[Workspace, str], Callable[[], float]]
) -> Bench:
    """A p50 latency benchmark: one shell on `backend`, `steps(ws, shell)` timed after a warm-up."""

    def run(settings: Settings) -> Result:
        reason = sandbox.why_not_on(backend)
        if reason:
            return skipped(description, reason)
        iterations, warmup = settings.n(200, 20), settings.n(10, 3)
        with sandbox.workspace_on(backend) as ws:
            step = steps(ws, ws.shells.open().id)
            samples = [step() for _ in range(warmup + iterations)][warmup:]
        return measured(description, "ms", summarize(samples), "p50", "<", target_ms, iterations=iterations)

    return run


def _throughput(backend: str) -> Bench:
    description = THROUGHPUT_DESCRIPTION.format(backend=backend)

    def run(settings: Settings) -> Result:
        reason = sandbox.why_not_on(backend)
        if reason:
            return skipped(description, reason)
        size = settings.n(FLOOD_BYTES, FLOOD_BYTES // 10)
        rates = []
        with sandbox.workspace_on(backend) as ws:
            shell = ws.shells.open().id
            cursor = _prompt(ws, shell, 0)
            for _ in range(settings.n(3, 1)):
                began = time.perf_counter()
                ws.shells.write(shell, f"head -c {size} /dev/zero")
                deadline = time.monotonic() + WAIT_S
                while True:  # small reads of the tail: is the prompt back?
                    end = ws.shells.read(shell, cursor=cursor, max_bytes=1).end
                    tail = ws.shells.read(shell, cursor=max(cursor, end - 64), max_bytes=64).data
                    if end - cursor >= size and tail.endswith(PROMPT_END):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{size} bytes did not arrive within {WAIT_S}s ({end - cursor} did)")
                    time.sleep(0.002)
                seconds = time.perf_counter() - began
                rates.append((end - cursor) / seconds / 1e6)
                cursor = end
        stats = {"mb_per_s": round(statistics.median(rates), 1), "runs_mb_per_s": [round(r, 1) for r in rates]}
        return measured(description, "MB/s", stats, "mb_per_s", ">=", 50.0, bytes_per_run=size)

    return run


def idle_shells_rss(settings: Settings) -> Result:
    with sandbox.roost_on("mock") as roost:
        ws = roost.create_workspace(ENV)
        try:
            boot = roost._engine.store.load(ws.id).boot
            pid = None if boot is None else boot.to_json().get("agent_pid")
            if not isinstance(pid, int):
                raise RuntimeError("the workspace record names no agent_pid")
            ws.exec(["true"])  # the agent has served a call: its baseline, not its first import
            before = rss_mib(pid)
            shells = [ws.shells.open().id for _ in range(IDLE_SHELLS)]
            for shell in shells:
                _prompt(ws, shell, 0)  # each shell has started and printed its prompt, then idles
            after = rss_mib(pid)
        finally:
            ws.delete(force=True)
    stats = {"rss_growth": round(after - before, 2), "rss_before": round(before, 2), "rss_after": round(after, 2)}
    return measured(RSS_DESCRIPTION, "MiB", stats, "rss_growth", "<", 30.0, shells=IDLE_SHELLS)


def benchmarks() -> dict[str, tuple[str, Bench]]:
    """Every shell benchmark by name, for `benchmarks.__main__.BENCHMARKS`."""
    table: dict[str, tuple[str, Bench]] = {}
    for backend in BACKENDS:
        echo = ECHO_DESCRIPTION.format(backend=backend)
        table[f"shell_echo_latency_{backend}"] = (echo, _latency(backend, echo, 10.0, _echo_steps))
    for backend in BACKENDS:
        ran = RUN_DESCRIPTION.format(backend=backend)
        table[f"shell_run_round_trip_{backend}"] = (ran, _latency(backend, ran, 20.0, _run_steps))
    for backend in BACKENDS:
        table[f"shell_output_throughput_{backend}"] = (
            THROUGHPUT_DESCRIPTION.format(backend=backend),
            _throughput(backend),
        )
    table["shell_idle_rss_50"] = (RSS_DESCRIPTION, idle_shells_rss)
    return table
