"""Getting an environment's rootfs into the cache: from a registry, or by building it.

Sources are tried in the configured order (`$ROOST_IMAGE_SOURCES`, default
`registry,build`); the registry source needs a registry (`$ROOST_REGISTRY`,
e.g. `127.0.0.1:5000/roost`, or one pinned in the catalog). Builds and
pulls of one env are serialised across processes; the second waiter finds
the image already cached. A cached image counts only while it is current:
made from the catalog entry as it is now (`EnvSpec.built_from`), so a
package added to an env is never silently missing from its cached image.

Imports: images.*, config, errors and the standard library.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from roost.errors import ImageError, InvalidArgument, RoostError, operator_remedy
from roost.images.build import ProgressFn, finish_rootfs, run_bootstrap, tree_digest
from roost.images.cache import EnvImage, ImageCache, check_free_space, tree_size
from roost.images.catalog import EnvSpec, env_spec
from roost.images.freshness import current_image, is_current
from roost.images.resolve import resolve_env

SOURCES_ENV = "ROOST_IMAGE_SOURCES"
REGISTRY_ENV = "ROOST_REGISTRY"
SOURCES = ("registry", "build")
BUILD_SPACE_BYTES = 600 * 1024 * 1024


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def configured_sources() -> list[str]:
    """The image sources to try, in order.

    Raises:
        ImageError: invalid_sources for an unknown name.
    """
    raw = os.environ.get(SOURCES_ENV, ",".join(SOURCES))
    sources = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ImageError(
            f"unknown image source(s) {', '.join(unknown) or '(none)'} in {SOURCES_ENV}",
            code="invalid_sources",
            hint=f"use a comma-separated list of: {', '.join(SOURCES)}",
        )
    return sources


def registry_reference(spec: EnvSpec, registry: str | None = None, digest: str | None = None) -> str | None:
    """Where `spec` lives in a registry: `host[:port]/prefix/debian:12` (or `...@sha256:...`
    when a digest is given or pinned in the catalog), or None if nowhere."""
    base = registry or os.environ.get(REGISTRY_ENV) or spec.registry
    if not base:
        return None
    repo, _, tag = spec.name.partition(":")
    pinned = digest or (spec.digest if not registry and not os.environ.get(REGISTRY_ENV) else None)
    if pinned:
        return f"{base.rstrip('/')}/{repo}@{pinned}"
    return f"{base.rstrip('/')}/{repo}:{tag or 'latest'}"


def custom_reference(name: str, registry: str | None, digest: str | None) -> str:
    """Where custom env `name` (`repo[:tag]`) lives in `registry` (default `$ROOST_REGISTRY`).

    Raises:
        ImageError: no_registry. InvalidArgument: invalid_digest.
    """
    if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise InvalidArgument(f"{digest!r} is not a sha256 digest", code="invalid_digest", hint="give sha256:<64 hex>")
    base = registry or os.environ.get(REGISTRY_ENV)
    if not base:
        raise ImageError(
            f"no registry is configured for {name}",
            code="no_registry",
            hint=f"name the registry it was pushed to (host:port/prefix), or set {REGISTRY_ENV}",
        )
    repo, _, tag = name.partition(":")
    return f"{base.rstrip('/')}/{repo}@{digest}" if digest else f"{base.rstrip('/')}/{repo}:{tag or 'latest'}"


def build_image(cache: ImageCache, env: str, progress: ProgressFn | None = None) -> EnvImage:
    """Build `env` with mmdebstrap/debootstrap and cache it (replacing any cached one).

    Raises:
        ImageError: build_failed, disk_full, no_bootstrap_tool, userns_unavailable, image_incomplete.
    """
    spec = env_spec(env)
    with cache.lock(env):
        cache.ensure()
        check_free_space(cache.root, BUILD_SPACE_BYTES)
        with cache.staging("build") as staged:
            root = staged / "rootfs"
            tool = run_bootstrap(spec, root, progress)
            finish_rootfs(spec, root)
            if progress:
                progress("hashing the image", 6, 7)
            key = tree_digest(root).replace("sha256:", "sha256-")
            image = EnvImage(
                env=env,
                key=key,
                source="build",
                created_at=_now(),
                size_bytes=tree_size(root),
                packages=spec.packages,
                details={"tool": tool, "suite": spec.suite},
                built_from=spec.built_from,
            )
            root.rename(staged / "final")
            committed = cache.commit(staged / "final", image)
            if progress:
                progress("done", 7, 7)
            return committed


def pull_image(
    cache: ImageCache,
    env: str,
    *,
    registry: str | None = None,
    digest: str | None = None,
    progress: ProgressFn | None = None,
) -> EnvImage:
    """Pull `env` from its registry, verify every blob, unpack it into the cache.

    Raises:
        ImageError: no_registry, registry_unreachable, image_not_found, digest_mismatch, layer_rejected.
    """
    from roost.images.registry_source import pull_into_cache

    spec = env_spec(env)
    if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise InvalidArgument(f"{digest!r} is not a sha256 digest", code="invalid_digest", hint="give sha256:<64 hex>")
    reference = registry_reference(spec, registry, digest)
    if reference is None:
        raise ImageError(
            f"no registry is configured for {env}",
            code="no_registry",
            remedy=operator_remedy(f"set {REGISTRY_ENV}=host:port/prefix, or build it", "env_build", env),
        )
    with cache.lock(env):
        return pull_into_cache(cache, spec, reference, progress)


def ensure_image(cache: ImageCache, env: str, progress: ProgressFn | None = None) -> EnvImage:
    """The cached image for `env` (a catalog name or an image reference), fetched from the first
    source that works if missing (an image reference has one source: its registry).

    Raises:
        ImageError: every source failed (the last error, with the others in details).
    """
    resolved = resolve_env(env)
    if resolved.kind == "image":
        from roost.images.image_refs import ensure_reference_image

        return ensure_reference_image(cache, resolved, progress)
    cached = current_image(cache, env)
    if cached is not None:
        return cached
    failures: dict[str, str] = {}
    last: RoostError | None = None
    for source in configured_sources():
        # Another process may have finished it while we waited for the lock.
        cached = current_image(cache, env)
        if cached is not None:
            return cached
        try:
            if source == "registry":
                if registry_reference(env_spec(env)) is None:
                    failures[source] = "no registry configured"
                    continue
                pulled = pull_image(cache, env, progress=progress)
                if is_current(pulled):
                    return pulled
                failures[source] = "the registry's image was made from another package list than the catalog's"
                continue
            return build_image(cache, env, progress)
        except RoostError as exc:
            failures[source] = f"{exc.code}: {exc.message}"
            last = exc
    if last is not None:
        last.details["sources"] = failures
        raise last
    tried = "; ".join(f"{source}: {why}" for source, why in failures.items()) or "none configured"
    raise ImageError(
        f"no image source could provide {env} ({tried})",
        code="image_unavailable",
        hint=f"configure {SOURCES_ENV} or {REGISTRY_ENV}",
    )


def rootfs_path(cache: ImageCache, image: EnvImage) -> Path:
    return cache.rootfs(image.key)
