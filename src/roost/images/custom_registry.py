"""Custom envs through a registry: push one as an OCI image of its layers, pull one back flattened.

A pushed custom env is its base rootfs as the first layer, then each recipe layer with its
deletions as OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`); its config carries the recipe,
parent, base env and variables in labels. A pull unpacks every layer into one rootfs (the
layers are not kept apart) and records a custom env with that rootfs as its base and no
layers of its own: usable at once, and its recipe still shown by `env inspect`.

Imports: errors, images (build, cache, catalog, recipes; layers and oci lazily) and the standard library.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from roost.errors import ImageError
from roost.images.build import ProgressFn, finish_rootfs
from roost.images.cache import MARKER, EnvImage, ImageCache, tree_size
from roost.images.catalog import env_spec
from roost.images.interpreter import choose_interpreter
from roost.images.recipes import CustomEnv, Recipe, RecipeStore

ENV_LABEL = "dev.roost.env"
PACKAGES_LABEL = "dev.roost.packages"
RECIPE_LABEL = "dev.roost.recipe"
BASE_LABEL = "dev.roost.base"
ENV_VARS_LABEL = "dev.roost.env-vars"


def _labels(env: CustomEnv) -> dict[str, str]:
    recipe = env.recipe
    return {
        ENV_LABEL: env.name,
        PACKAGES_LABEL: ",".join((*recipe.apt, *recipe.pip, *recipe.npm)),
        RECIPE_LABEL: json.dumps(recipe.to_dict(), sort_keys=True),
        BASE_LABEL: env.base_env,
        ENV_VARS_LABEL: json.dumps(dict(env.env_vars), sort_keys=True),
    }


def push_custom(cache: ImageCache, env: CustomEnv, reference: str, progress: ProgressFn | None = None) -> str:
    """Publish custom env `env` to `reference` (host[:port]/repo:tag); return the manifest digest.

    Raises:
        ImageError: layer_write_failed, registry failures.
    """
    from roost.images.layers import layer_from_directory
    from roost.images.oci import RegistryClient, parse_reference

    ref = parse_reference(reference)
    store = RecipeStore(cache)
    trees = [(cache.rootfs(env.base_key), False), *((store.layer(k), True) for k in env.layers)]
    total = len(trees) + 1
    with cache.staging("push") as staged:
        packed = []
        for index, (tree, overlay) in enumerate(trees):
            if progress:
                progress(f"packing layer {index + 1}/{len(trees)}", index, total)
            out = staged / f"layer-{index}.tar.gz"
            packed.append((out, layer_from_directory(tree, out, overlay=overlay)))
        if progress:
            progress("uploading", len(trees), total)
        with RegistryClient(ref.registry) as client:
            digest = client.push_layers(ref.repository, ref.reference, packed, {"config": {"Labels": _labels(env)}})
        if progress:
            progress("done", total, total)
        return digest


def pull_custom(cache: ImageCache, name: str, reference: str, progress: ProgressFn | None = None) -> CustomEnv:
    """Pull a pushed custom env from `reference`, every blob verified, flattened into one rootfs.

    Raises:
        ImageError: not_a_custom_env when the image has no recipe label; registry and layer failures.
    """
    from roost.images.layers import apply_layer
    from roost.images.oci import RegistryClient, parse_reference

    ref = parse_reference(reference)
    cache.ensure()
    with RegistryClient(ref.registry) as client:
        pulled = client.pull(ref.repository, ref.reference, cache.blobs, progress)
    labels = json.loads(pulled.config_path.read_bytes()).get("config", {}).get("Labels") or {}
    if RECIPE_LABEL not in labels or BASE_LABEL not in labels:
        raise ImageError(
            f"{reference} is not a custom env pushed by roost (no {RECIPE_LABEL} label)",
            code="not_a_custom_env",
            hint="pull built-in envs by their name (env pull debian:12); push custom ones with env push",
        )
    recipe = Recipe.from_dict(json.loads(labels[RECIPE_LABEL]))
    base = env_spec(labels[BASE_LABEL])
    key = pulled.digest.replace(":", "-")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with cache.staging("pull") as staged:
        root = staged / "rootfs"
        root.mkdir()
        for layer_path in pulled.layer_paths:
            apply_layer(layer_path, root)
        (root / MARKER).unlink(missing_ok=True)
        finish_rootfs(base, root)
        size = tree_size(root)
        blobs = [pulled.digest, *(d.digest for d in (pulled.manifest.config, *pulled.manifest.layers))]
        image = EnvImage(
            name,
            key,
            "registry",
            now,
            size,
            pulled.digest,
            details={"blobs": blobs},
            interpreter=choose_interpreter(root, reference),
        )
        cache.commit(root, image, name_it=False)
    env = CustomEnv(
        name=name,
        recipe=recipe,
        key=key,
        base_env=base.name,
        base_key=key,
        layers=(),
        env_vars=tuple(json.loads(labels.get(ENV_VARS_LABEL, "{}")).items()),
        created_at=now,
        size_bytes=size,
        details={"reference": reference, "digest": pulled.digest, "flattened": True},
    )
    return RecipeStore(cache).save(env)
