"""Environments as users manage them: list, inspect, pull, build, push, prune; create and remove custom ones.

Joins the catalog (what exists), the image cache (what is here) and the
workspace records (what is in use, so prune never pulls a rootfs from
under a running sandbox).

Imports: config, errors, images, models, store records, workspace (custom_envs, engine).
"""

from __future__ import annotations

from roost.config import images_dir
from roost.errors import ConflictError
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache
from roost.images.catalog import CATALOG, env_spec
from roost.images.custom_registry import pull_custom, push_custom
from roost.images.flatten import flat_key
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
from roost.models import EnvInfo, PruneResult
from roost.store.records import WorkspaceRecord
from roost.workspace import custom_envs
from roost.workspace.engine import Engine


def cache(engine: Engine) -> ImageCache:
    return ImageCache(images_dir(engine.home))


def _info(name: str, image: EnvImage | None) -> EnvInfo:
    spec = env_spec(name)
    return EnvInfo(
        name=name,
        description=spec.description,
        packages=spec.packages,
        cached=image is not None,
        source=image.source if image else None,
        digest=image.digest if image else None,
        key=image.key if image else None,
        size_bytes=image.size_bytes if image else None,
        created_at=image.created_at if image else None,
        registry_reference=(image.details.get("reference") if image else None) or registry_reference(spec),
    )


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
    """The catalog, then the custom envs."""
    images = cache(engine)
    found = [_info(name, images.lookup(name)) for name in sorted(CATALOG)]
    return found + [custom_info(env) for env in RecipeStore(images).all()]


def inspect_env(engine: Engine, name: str) -> EnvInfo:
    images = cache(engine)
    custom = custom_env(images, name)
    return custom_info(custom) if custom is not None else _info(name, images.lookup(name))


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
    """A catalog env by its name, or (any other name) a custom env pushed by `env push`, flattened."""
    if name in CATALOG:
        return _info(name, pull_image(cache(engine), name, registry=registry, digest=digest, progress=progress))
    check_name(name)
    reference = custom_reference(name, registry, digest)
    images = cache(engine)
    with images.lock(f"recipe-pull-{name}"):
        return custom_info(pull_custom(images, name, reference, progress))


def build(engine: Engine, name: str, progress: ProgressFn | None = None) -> EnvInfo:
    return _info(name, build_image(cache(engine), name, progress))


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
    """Remove cached rootfs dirs, layers and blobs no env name, custom env or live workspace uses."""
    in_use = {r.image for r in engine.store.records() if isinstance(r, WorkspaceRecord) and r.image is not None}
    images = cache(engine)
    with images.lock():
        kept = _kept_by_custom_envs(images, in_use)
        removed = images.prune(kept) + RecipeStore(images).prune(kept)
    return PruneResult(removed=tuple(removed), in_use=tuple(sorted(in_use)))
