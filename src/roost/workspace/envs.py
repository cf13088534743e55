"""Environments as users manage them: list, inspect, pull, build, push, prune.

Joins the catalog (what exists), the image cache (what is here) and the
workspace records (what is in use, so prune never pulls a rootfs from
under a running sandbox).

Imports: images, models, store records, workspace.engine, config.
"""

from __future__ import annotations

from roost.config import images_dir
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache
from roost.images.catalog import CATALOG, env_spec
from roost.images.freshness import is_current
from roost.images.manager import build_image, pull_image, registry_reference
from roost.images.registry_source import push_env
from roost.models import EnvInfo, PruneResult
from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine


def cache(engine: Engine) -> ImageCache:
    return ImageCache(images_dir(engine.home))


def _info(name: str, image: EnvImage | None) -> EnvInfo:
    spec = env_spec(name)
    current = image is not None and is_current(image)
    return EnvInfo(
        name=name,
        description=spec.description,
        packages=spec.packages,
        cached=current,
        stale=image is not None and not current,
        source=image.source if image else None,
        digest=image.digest if image else None,
        key=image.key if image else None,
        size_bytes=image.size_bytes if image else None,
        created_at=image.created_at if image else None,
        registry_reference=(image.details.get("reference") if image else None) or registry_reference(spec),
    )


def list_envs(engine: Engine) -> list[EnvInfo]:
    images = cache(engine)
    return [_info(name, images.lookup(name)) for name in sorted(CATALOG)]


def inspect_env(engine: Engine, name: str) -> EnvInfo:
    return _info(name, cache(engine).lookup(name))


def pull(
    engine: Engine,
    name: str,
    registry: str | None = None,
    digest: str | None = None,
    progress: ProgressFn | None = None,
) -> EnvInfo:
    return _info(name, pull_image(cache(engine), name, registry=registry, digest=digest, progress=progress))


def build(engine: Engine, name: str, progress: ProgressFn | None = None) -> EnvInfo:
    return _info(name, build_image(cache(engine), name, progress))


def push(engine: Engine, name: str, reference: str, progress: ProgressFn | None = None) -> str:
    return push_env(cache(engine), name, reference, progress)


def prune(engine: Engine) -> PruneResult:
    """Remove cached rootfs dirs and blobs no env name or live workspace uses."""
    in_use = {r.image for r in engine.store.records() if isinstance(r, WorkspaceRecord) and r.image is not None}
    images = cache(engine)
    with images.lock():
        removed = images.prune(in_use)
    return PruneResult(removed=tuple(removed), in_use=tuple(sorted(in_use)))
