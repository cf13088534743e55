"""Sandbox backend latencies with a warm image cache (the shared `.cache/images`, or `$ROOST_IMAGES`):
workspace create p50 < 150 ms, delete p50 < 100 ms, `ws.exec(["true"])` round trip p50 < 8 ms.

Each benchmark runs in its own temporary home whose `images` links to the shared cache, so
nothing is built here; without bubblewrap, or without a cached debian:12, they are skipped
with the reason recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._harness import ENV, REPO, Result, Settings, measured, skipped, summarize, temp_home

if TYPE_CHECKING:
    from roost import Roost, Workspace

BACKEND = "sandbox"
CREATE_DESCRIPTION = "SDK create_workspace('debian:12'), sandbox backend, warm image cache"
DELETE_DESCRIPTION = "SDK workspace delete, sandbox backend"
EXEC_DESCRIPTION = 'SDK ws.exec(["true"]) round trip, sandbox backend'


def shared_images() -> Path:
    from roost.config import IMAGES_ENV

    return Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")


def why_not() -> str | None:
    """Why the sandbox benchmarks cannot run here, or None when they can."""
    from roost.backends import get_backend
    from roost.images.cache import ImageCache
    from roost.images.freshness import current_image

    check = get_backend(BACKEND).availability()
    if not check.available:
        return f"the sandbox backend cannot run here: {check.reason}"
    if current_image(ImageCache(shared_images()), ENV) is None:
        return f"{ENV} is not (or no longer) built in the image cache {shared_images()}; run `make images` (benchmarks never build it)"
    return None


@contextmanager
def warm_home() -> Iterator[Path]:
    """A temporary home whose image cache is the shared, warm one."""
    with temp_home() as home:
        (home / "images").symlink_to(shared_images(), target_is_directory=True)
        yield home


def why_not_on(backend: str) -> str | None:
    """Why a benchmark on `backend` (mock or sandbox) cannot run here, or None."""
    return why_not() if backend == BACKEND else None


@contextmanager
def roost_on(backend: str) -> Iterator[Roost]:
    """An SDK client on `backend` in a temporary home (the sandbox's sees the warm image cache)."""
    from roost import Roost

    home: AbstractContextManager[Path] = warm_home() if backend == BACKEND else temp_home()
    with home as path, Roost(home=path, backend=backend) as roost:
        yield roost


@contextmanager
def workspace_on(backend: str) -> Iterator[Workspace]:
    """A debian:12 workspace on `backend`, deleted afterwards."""
    with roost_on(backend) as roost:
        ws = roost.create_workspace(ENV)
        try:
            yield ws
        finally:
            ws.delete(force=True)


def create_samples(settings: Settings, **options: Any) -> list[float]:
    """Milliseconds per `create_workspace(ENV, **options)` in a warm home, warm-up runs left out."""
    from roost import Roost

    runs, warmup = settings.n(30, 5), settings.n(3, 1)
    samples = []
    with warm_home() as home, Roost(home=home, backend=BACKEND) as roost:
        for index in range(warmup + runs):
            start = time.perf_counter()
            ws = roost.create_workspace(ENV, ephemeral=False, **options)
            elapsed = (time.perf_counter() - start) * 1000
            ws.delete(force=True)
            if index >= warmup:
                samples.append(elapsed)
    return samples


def create(settings: Settings) -> Result:
    reason = why_not()
    if reason:
        return skipped(CREATE_DESCRIPTION, reason)
    samples = create_samples(settings)
    return measured(CREATE_DESCRIPTION, "ms", summarize(samples), "p50", "<", 150.0, runs=len(samples))


def delete(settings: Settings) -> Result:
    from roost import Roost

    reason = why_not()
    if reason:
        return skipped(DELETE_DESCRIPTION, reason)
    runs, warmup = settings.n(30, 5), settings.n(3, 1)
    samples = []
    with warm_home() as home, Roost(home=home, backend=BACKEND) as roost:
        for index in range(warmup + runs):
            ws = roost.create_workspace(ENV, ephemeral=False)
            ws.exec(["true"])  # a workspace that was used, as deletes usually see
            start = time.perf_counter()
            ws.delete()
            elapsed = (time.perf_counter() - start) * 1000
            if index >= warmup:
                samples.append(elapsed)
    return measured(DELETE_DESCRIPTION, "ms", summarize(samples), "p50", "<", 100.0, runs=runs)


def exec_samples(settings: Settings, **options: Any) -> list[float]:
    """Milliseconds per `ws.exec(["true"])` in a workspace made with `**options`, after a warm-up."""
    from roost import Roost

    samples = []
    with warm_home() as home, Roost(home=home, backend=BACKEND) as roost:
        ws = roost.create_workspace(ENV, **options)
        try:
            for _ in range(settings.n(20, 5)):
                ws.exec(["true"])
            for _ in range(settings.n(200, 30)):
                start = time.perf_counter()
                result = ws.exec(["true"])
                samples.append((time.perf_counter() - start) * 1000)
                if result.exit_code != 0:
                    raise RuntimeError(f"`true` exited {result.exit_code}: {result.stderr}")
        finally:
            ws.delete(force=True)
    return samples


def exec_round_trip(settings: Settings) -> Result:
    reason = why_not()
    if reason:
        return skipped(EXEC_DESCRIPTION, reason)
    samples = exec_samples(settings)
    return measured(EXEC_DESCRIPTION, "ms", summarize(samples), "p50", "<", 8.0, iterations=len(samples))
