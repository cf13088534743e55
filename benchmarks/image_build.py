"""How long building `debian:12-base` from apt's mirror takes, and how big it is (reported; no target yet).

Builds into a temporary image cache that is removed afterwards, so the shared cache is never
touched. It downloads packages for 15-40 s, so `--quick` skips it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._harness import Result, Settings, log, skipped

ENV = "debian:12-base"
DESCRIPTION = f"local build of {ENV} (mmdebstrap/debootstrap from apt's mirror) into an empty cache"


def run(settings: Settings) -> Result:
    from roost.errors import ImageError
    from roost.images.build import bootstrap_tool
    from roost.images.cache import ImageCache
    from roost.images.manager import build_image

    if settings.quick:
        return skipped(DESCRIPTION, "a real build downloads packages for 15-40 s; not run with --quick")
    try:
        bootstrap_tool()
    except ImageError as exc:
        return skipped(DESCRIPTION, exc.message)
    cache_dir = Path(tempfile.mkdtemp(prefix="roost-bench-images-"))
    steps: list[tuple[str, float]] = []
    try:
        start = time.perf_counter()

        def progress(step: str, done: int, total: int) -> None:
            if not steps or steps[-1][0] != step:
                steps.append((step, round(time.perf_counter() - start, 2)))
                log(f"  build [{done}/{total}] {step}")

        image = build_image(ImageCache(cache_dir), ENV, progress)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return {
        "description": DESCRIPTION,
        "unit": "s",
        "build_seconds": round(seconds, 2),
        "size_bytes": image.size_bytes,
        "size_mib": round(image.size_bytes / (1024 * 1024), 1),
        "tool": image.details.get("tool"),
        "steps_at_seconds": dict(steps),
        "target": None,
        "note": "reported only; no target yet",
        "met": True,
    }
