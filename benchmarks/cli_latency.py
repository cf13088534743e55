"""Wall time of CLI processes: `roost --version` (median < 150 ms) and
`roost workspace exec WS -- true` (median < 300 ms), using the venv's `roost` script."""

from __future__ import annotations

import subprocess
import time

from benchmarks._harness import BACKEND, ENV, Result, Settings, cli_env, measured, roost_script, summarize, temp_home

PROCESS_TIMEOUT = 60.0


def _wall_ms(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=PROCESS_TIMEOUT,
    )
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{' '.join(argv[1:])} exited {proc.returncode}: {detail[-1] if detail else 'no stderr'}")
    return elapsed


def _series(argv: list[str], env: dict[str, str], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        _wall_ms(argv, env)
    return [_wall_ms(argv, env) for _ in range(runs)]


def version(settings: Settings) -> Result:
    runs = settings.n(20, 5)
    with temp_home() as home:
        samples = _series([str(roost_script()), "--version"], cli_env(home), runs, warmup=2)
    return measured("`roost --version` process wall time", "ms", summarize(samples), "median", "<", 150.0, runs=runs)


def workspace_exec(settings: Settings) -> Result:
    from roost import Roost

    runs = settings.n(20, 5)
    with temp_home() as home:
        with Roost(home=home, backend=BACKEND) as roost:
            ws_id = roost.create_workspace(ENV, ephemeral=False).id
        argv = [str(roost_script()), "workspace", "exec", ws_id, "--", "true"]
        samples = _series(argv, cli_env(home), runs, warmup=2)
    return measured(
        "`roost workspace exec WS -- true` process wall time, mock backend",
        "ms",
        summarize(samples),
        "median",
        "<",
        300.0,
        runs=runs,
    )
