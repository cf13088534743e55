"""Environments as users manage them: list, inspect, pull, build, push, prune; create and remove custom ones.

Joins the catalog (what exists), the image cache (what is here, pulled image references
included) and the workspace records (what is in use, so prune never pulls a rootfs from
under a running sandbox).

Imports: config, errors, images, models, store records, workspace (custom_envs, engine).
"""

from __future__ import annotations

import dataclasses

from roost.config import images_dir
from roost.errors import ConflictError
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache
from roost.images.catalog import CATALOG
from roost.images.custom_registry import pull_custom, push_custom
from roost.images.flatten import flat_key
from roost.images.freshness import is_current
from roost.images.image_refs import pull_reference
from roost.images.manager import build_image, custom_reference, pull_image, registry_reference
from roost.images.recipes import (
    CustomEnv,
    Recipe,
    RecipeStore,
    check_name,
    custom_env,
    layer_chain,
    not_custom,
)
from roost.images.registry_source import push_env
from roost.images.resolve import EnvSource, resolve_env
from roost.models import EnvInfo, PruneResult
from roost.store.records import WorkspaceRecord
from roost.workspace import custom_envs
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


def custom_info(env: CustomEnv) -> EnvInfo:
    recipe = env.recipe
    installs = [*recipe.apt, *recipe.pip, *recipe.npm]
    return EnvInfo(
        name=env.name,
        description=f"{env.parent} plus a recipe" + (f" ({', '.join(installs)})" if installs else ""),
        packages=tuple(installs),
        cached=True,
        source="recipe",
        key=env.key,
        size_bytes=env.size_bytes,
        created_at=env.created_at,
        parent=env.parent,
        recipe=recipe.to_dict(),
        layers=env.layers,
        env_vars=dict(env.env_vars),
    )


def list_envs(engine: Engine) -> list[EnvInfo]:
    """The catalog, then the custom envs, then every pulled image reference, by name."""
    images = cache(engine)
    infos = [_info(resolve_env(name), images.lookup(name)) for name in sorted(CATALOG)]
    customs = [custom_info(env) for env in RecipeStore(images).all()]
    pulled = sorted((image for image in images.images() if image.env not in CATALOG), key=lambda i: i.env)
    return infos + customs + [_info(resolve_env(image.env), image) for image in pulled]


def inspect_env(engine: Engine, name: str) -> EnvInfo:
    images = cache(engine)
    source = resolve_env(name, images)
    if source.custom is not None:
        return custom_info(source.custom)
    return _info(source, images.lookup(source.canonical))


def create_env(
    engine: Engine, name: str, recipe: Recipe, *, replace: bool = False, progress: ProgressFn | None = None
) -> EnvInfo:
    return custom_info(custom_envs.create(engine, name, recipe, replace=replace, progress=progress))


def _users(engine: Engine, name: str) -> list[str]:
    """Workspaces made from env `name` (build workspaces of it included)."""
    return sorted(r.name or r.id for r in engine.store.records() if isinstance(r, WorkspaceRecord) and r.env == name)


def remove_env(engine: Engine, name: str) -> EnvInfo:
    """Forget custom env `name` (its layer goes with the next prune once nothing uses it).

    Raises:
        NotFound: env_not_found (not a custom env).
        ConflictError: env_in_use, naming the workspaces, or the custom envs built on it.
    """
    images = cache(engine)
    store = RecipeStore(images)
    with images.lock("recipes"):
        custom = store.lookup(name)
        if custom is None:
            raise not_custom(name)
        users = _users(engine, name)
        children = sorted(env.name for env in store.all() if env.parent == name)
        if users or children:
            what = f"workspace(s) {', '.join(users)}" if users else f"custom env(s) {', '.join(children)}"
            raise ConflictError(
                f"custom env {name!r} is in use by {what}",
                code="env_in_use",
                hint="delete those first, then remove it",
                details={"workspaces": users, "envs": children},
            )
        store.forget(name)
    return custom_info(custom)


def pull(
    engine: Engine,
    name: str,
    registry: str | None = None,
    digest: str | None = None,
    progress: ProgressFn | None = None,
) -> EnvInfo:
    """A catalog env from its registry; a custom env pushed by `env push` (flattened) from
    `registry` (or `$ROOST_REGISTRY` when it is a custom env here already); else an image
    reference again (its tag resolved anew).
    """
    images = cache(engine)
    if name in CATALOG:
        return _info(resolve_env(name), pull_image(images, name, registry=registry, digest=digest, progress=progress))
    if registry is not None or digest is not None or custom_env(images, name) is not None:
        check_name(name)
        reference = custom_reference(name, registry, digest)
        with images.lock(f"recipe-pull-{name}"):
            return custom_info(pull_custom(images, name, reference, progress))
    source = resolve_env(name)
    with images.lock(source.canonical):
        return _info(source, pull_reference(images, source, progress))


def build(engine: Engine, name: str, progress: ProgressFn | None = None) -> EnvInfo:
    return _info(resolve_env(name), build_image(cache(engine), name, progress))


def push(engine: Engine, name: str, reference: str, progress: ProgressFn | None = None) -> str:
    images = cache(engine)
    custom = custom_env(images, name)
    if custom is not None:
        return push_custom(images, custom, reference, progress)
    return push_env(images, name, reference, progress)


def _kept_by_custom_envs(images: ImageCache, keys: set[str]) -> set[str]:
    """`keys` with, for each layer key among them, its base rootfs and lower layers; and every
    custom env's base rootfs and layers."""
    kept = set(keys)
    for key in keys:
        built = layer_chain(images, key)
        if built is not None:
            kept |= {built.base_key, flat_key(built), *built.layers}
    for env in RecipeStore(images).all():
        kept |= {env.base_key, flat_key(env), *env.layers}
    return kept


def prune(engine: Engine) -> PruneResult:
    """Remove cached rootfs dirs, layers and blobs no env name, custom env or live workspace uses;
    pulled image references no workspace uses are forgotten first (a later create pulls them again)."""
    in_use = {r.image for r in engine.store.records() if isinstance(r, WorkspaceRecord) and r.image is not None}
    images = cache(engine)
    with images.lock():
        kept = _kept_by_custom_envs(images, in_use)
        customs = {env.name for env in RecipeStore(images).all()}
        for image in images.images():
            if image.env not in CATALOG and image.env not in customs and image.key not in kept:
                images.forget(image.env)
        removed = images.prune(kept) + RecipeStore(images).prune(kept)
    return PruneResult(removed=tuple(removed), in_use=tuple(sorted(in_use)))
