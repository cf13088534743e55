"""An OCI image reference already in the cache by digest: how long resolving it takes, and that it
touches no blob and asks no registry (target: p50 < 50 ms, 0 blobs).

A busybox-static tree is pushed to a local registry (Debian's docker-registry on 127.0.0.1, as
the tests start it) and pulled once, cold. The cache's blobs are then deleted and the same
digest is asked for under a registry address nobody listens on: only the cache can answer.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import Result, Settings, failed, log, measured, skipped, summarize

REPO = Path(__file__).resolve().parents[1]
DESCRIPTION = "env by image digest already cached: resolve time, blobs read, registry asked (target p50 < 50 ms)"
BUSYBOX = Path("/bin/busybox")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(settings: Settings) -> Result:
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from oci_images import busybox_tree, push_tree  # type: ignore[import-not-found]
    from registry import fetch_registry_binary, start_registry, stop_registry_process  # type: ignore[import-not-found]

    from roost.images.cache import ImageCache
    from roost.images.manager import ensure_image

    if not BUSYBOX.is_file():
        return skipped(DESCRIPTION, "busybox-static is not installed (scripts/install-system-deps.sh)")
    binary, why = fetch_registry_binary()
    if binary is None:
        return skipped(DESCRIPTION, f"no local registry: {why}")
    scratch = Path(tempfile.mkdtemp(prefix="roost-bench-ref-"))
    registry = start_registry(binary, scratch / "registry")
    try:
        digest = push_tree(registry.address, busybox_tree(scratch), scratch, repository="bench/busybox", tag="1")
        cache = ImageCache(scratch / "images")
        started = time.perf_counter()
        ensure_image(cache, f"{registry.address}/bench/busybox@{digest}")
        cold = time.perf_counter() - started
        shutil.rmtree(cache.blobs)
        elsewhere = f"127.0.0.1:{_closed_port()}/bench/busybox@{digest}"
        samples = []
        for _ in range(settings.n(50, 5)):
            started = time.perf_counter()
            image = ensure_image(cache, elsewhere)
            samples.append(time.perf_counter() - started)
            if image.digest != digest:
                return failed(DESCRIPTION, f"resolved to {image.digest}, not {digest}")
        blobs = sum(1 for _ in cache.blobs.rglob("*")) if cache.blobs.exists() else 0
        log(f"  cold pull {cold:.3f} s, cached p50 {summarize(samples)['p50']} s, blobs after {blobs}")
        if blobs:
            return failed(DESCRIPTION, f"{blobs} blobs were fetched for a cached digest")
        stats = summarize([s * 1000 for s in samples], digits=3)
        return measured(DESCRIPTION, "ms", stats, "p50", "<", 50.0, cold_pull_seconds=round(cold, 3), blobs_read=0)
    finally:
        stop_registry_process(registry.process)
        shutil.rmtree(scratch, ignore_errors=True)
