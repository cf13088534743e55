"""Environments as users manage them: list, inspect, pull, build, push, prune.

Joins the catalog (what exists), the image cache (what is here, pulled image references
included) and the workspace records (what is in use, so prune never pulls a rootfs from
under a running sandbox).

Imports: images, models, store records, workspace.engine, config, errors.
"""

from __future__ import annotations

import dataclasses

from roost.config import images_dir
from roost.errors import InvalidArgument
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache
from roost.images.catalog import CATALOG
from roost.images.freshness import is_current
from roost.images.image_refs import pull_reference
from roost.images.manager import build_image, pull_image, registry_reference
from roost.images.registry_source import push_env
from roost.images.resolve import EnvSource, resolve_env
from roost.models import EnvInfo, PruneResult
from roost.store.records import WorkspaceRecord
from roost.workspace.engine import Engine


def cache(engine: Engine) -> ImageCache:
    return ImageCache(images_dir(engine.home))


def _with_image(info: EnvInfo, image: EnvImage | None, *, current: bool = True) -> EnvInfo:
    """`info` with what the cache holds for it (nothing: not cached; not `current`: stale)."""
    if image is None:
        return info
    return dataclasses.replace(
        info,
        cached=current,
        stale=not current,
        source=image.source,
        digest=image.digest,
        key=image.key,
        size_bytes=image.size_bytes,
        created_at=image.created_at,
        interpreter=image.interpreter,
    )


def _info(source: EnvSource, image: EnvImage | None) -> EnvInfo:
    if source.spec is None:
        about = EnvInfo(source.canonical, f"OCI image {source.name}", (), False, registry_reference=source.canonical)
        return _with_image(about, image)
    spec = source.spec
    reference = (image.details.get("reference") if image else None) or registry_reference(spec)
    about = EnvInfo(spec.name, spec.description, spec.packages, False, registry_reference=reference)
    return _with_image(about, image, current=image is None or is_current(image))


def list_envs(engine: Engine) -> list[EnvInfo]:
    """The catalog, then every pulled image reference, by name."""
    images = cache(engine)
    infos = [_info(resolve_env(name), images.lookup(name)) for name in sorted(CATALOG)]
    pulled = sorted((image for image in images.images() if image.env not in CATALOG), key=lambda i: i.env)
    return infos + [_info(resolve_env(image.env), image) for image in pulled]


def inspect_env(engine: Engine, name: str) -> EnvInfo:
    source = resolve_env(name)
    return _info(source, cache(engine).lookup(source.canonical))


def pull(
    engine: Engine,
    name: str,
    registry: str | None = None,
    digest: str | None = None,
    progress: ProgressFn | None = None,
) -> EnvInfo:
    """Pull a catalog env from its registry, or an image reference again (its tag resolved anew).

    Raises:
        InvalidArgument: `registry`/`digest` given with an image reference (it names both itself).
    """
    source = resolve_env(name)
    if source.image is None:
        return _info(source, pull_image(cache(engine), name, registry=registry, digest=digest, progress=progress))
    if registry is not None or digest is not None:
        raise InvalidArgument(
            f"{name} is an image reference: it names its registry and digest itself",
            hint="name the digest in the reference itself: host[:port]/repo@sha256:<hex>",
        )
    images = cache(engine)
    with images.lock(source.canonical):
        return _info(source, pull_reference(images, source, progress))


def build(engine: Engine, name: str, progress: ProgressFn | None = None) -> EnvInfo:
    return _info(resolve_env(name), build_image(cache(engine), name, progress))


def push(engine: Engine, name: str, reference: str, progress: ProgressFn | None = None) -> str:
    return push_env(cache(engine), name, reference, progress)


def prune(engine: Engine) -> PruneResult:
    """Remove cached rootfs dirs and blobs no env name or live workspace uses; pulled image
    references no workspace uses are forgotten first (a later create pulls them again)."""
    in_use = {r.image for r in engine.store.records() if isinstance(r, WorkspaceRecord) and r.image is not None}
    images = cache(engine)
    with images.lock():
        for image in images.images():
            if image.env not in CATALOG and image.key not in in_use:
                images.forget(image.env)
        removed = images.prune(in_use)
    return PruneResult(removed=tuple(removed), in_use=tuple(sorted(in_use)))
