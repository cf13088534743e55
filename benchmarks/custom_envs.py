"""Custom envs on the sandbox backend: creating a workspace from a cached custom env costs the
same as from debian:12 (both measured in one run; target p50 < 150 ms), and building a recipe
again with nothing changed is a cache hit (p50 < 1 s, no sandbox started).

The custom env (a copy, an env var and a run step: no network) is built once per run in a
temporary home whose base images are the shared cache's and whose layers are its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from benchmarks._harness import ENV, Result, Settings, measured, skipped, summarize, temp_home
from benchmarks.sandbox import BACKEND, shared_images, why_not

if TYPE_CHECKING:
    from roost import Roost

CREATE_DESCRIPTION = "SDK create_workspace(custom env on debian:12), sandbox backend, cached layer"
REBUILD_DESCRIPTION = "SDK create_env with an unchanged recipe (cache hit), sandbox backend"
NAME = "bench-recipe"


@contextmanager
def _roost_with_custom_env() -> Iterator[tuple[Roost, dict[str, Any]]]:
    from roost import Roost

    with temp_home() as home:
        images = home / "images"
        images.mkdir(mode=0o700)
        for name in ("rootfs", "idmapped", "envs"):
            (images / name).symlink_to(shared_images() / name, target_is_directory=True)
        source = home / "motd"
        source.write_text("benchmark\n")
        recipe: dict[str, Any] = {
            "from_": ENV,
            "copy": [f"{source}:/etc/motd"],
            "run": ["echo built > /etc/bench-marker"],
            "env": {"BENCH": "1"},
        }
        with Roost(home=home, backend=BACKEND) as roost:
            roost.create_env(NAME, **recipe)
            yield roost, recipe


def _create_ms(roost: Roost, env: str) -> float:
    start = time.perf_counter()
    ws = roost.create_workspace(env, ephemeral=False)
    elapsed = (time.perf_counter() - start) * 1000
    ws.delete(force=True)
    return elapsed


def create(settings: Settings) -> Result:
    reason = why_not()
    if reason:
        return skipped(CREATE_DESCRIPTION, reason)
    runs, warmup = settings.n(30, 5), settings.n(3, 1)
    custom: list[float] = []
    builtin: list[float] = []
    with _roost_with_custom_env() as (roost, _recipe):
        for index in range(warmup + runs):
            # Interleaved, so both see the same machine load.
            custom_ms, builtin_ms = _create_ms(roost, NAME), _create_ms(roost, ENV)
            if index >= warmup:
                custom.append(custom_ms)
                builtin.append(builtin_ms)
    baseline = summarize(builtin)
    return measured(
        CREATE_DESCRIPTION, "ms", summarize(custom), "p50", "<", 150.0, runs=runs, debian_12_p50=baseline["p50"]
    )


def rebuild(settings: Settings) -> Result:
    reason = why_not()
    if reason:
        return skipped(REBUILD_DESCRIPTION, reason)
    samples = []
    with _roost_with_custom_env() as (roost, recipe):
        for _ in range(settings.n(20, 3)):
            start = time.perf_counter()
            roost.create_env(NAME, **recipe)
            samples.append((time.perf_counter() - start) * 1000)
    return measured(REBUILD_DESCRIPTION, "ms", summarize(samples), "p50", "<", 1000.0, runs=len(samples))


def benchmarks() -> dict[str, tuple[str, Callable[[Settings], Result]]]:
    return {
        "sandbox_create_custom_env": (CREATE_DESCRIPTION, create),
        "custom_env_rebuild_cache_hit": (REBUILD_DESCRIPTION, rebuild),
    }
