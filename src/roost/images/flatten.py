"""A custom env as one tree: its base rootfs with each layer applied, for what cannot stack
overlay lowers (the firecracker guest image builder).

The tree is cached under `rootfs/flat-<layer hex>` without an env name pointing at it (the custom
env's record does, through its key); it is built in tmp/ and renamed into place when complete.
Each layer is applied as the OCI layer `env push` would publish, so overlay whiteouts and
opaque directories delete what they hide.

Imports: errors, images (cache, idshift, recipes, layers) and the standard library.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from roost.errors import ImageError
from roost.images.cache import MARKER, EnvImage, ImageCache, tree_size
from roost.images.idshift import copy_tree
from roost.images.layers import apply_layer, layer_from_directory
from roost.images.recipes import CustomEnv, RecipeStore


def flat_key(env: CustomEnv) -> str:
    """The rootfs key of `env` flattened (its base key when it has no layers: a pulled env)."""
    return env.key.replace("layer-", "flat-", 1) if env.layers else env.base_key


def flattened(cache: ImageCache, env: CustomEnv) -> EnvImage:
    """`env` as one cached rootfs, made on first use.

    Raises:
        ImageError: copy_failed, disk_full, layer_rejected, image_missing.
    """
    key = flat_key(env)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = cache.image_of(key)
    if made is not None:
        return made
    if not (cache.rootfs(env.base_key) / MARKER).is_file():
        raise ImageError(f"the base image of {env.name} is no longer cached", code="image_missing")
    store = RecipeStore(cache)
    with cache.lock(f"flatten-{key}"), cache.staging("flatten") as staged:
        root = staged / "rootfs"
        copy_tree(cache.rootfs(env.base_key), root, f"the base of {env.name}")
        for layer_key in env.layers:
            packed = staged / f"{layer_key}.tar.gz"
            layer_from_directory(store.layer(layer_key), packed, overlay=True)
            apply_layer(packed, root)
            packed.unlink()
        base = cache.image_of(env.base_key)
        image = EnvImage(env.name, key, "recipe", now, tree_size(root), details={"layers": list(env.layers)})
        if base is not None:  # the agent runs on what it ran on in the base
            image = dataclasses.replace(image, interpreter=base.interpreter)
        return cache.commit(root, image, name_it=False)
