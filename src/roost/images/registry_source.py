"""The registry as an image source: pull an env into the cache, publish one from it.

Both directions use the same image shape: one gzip'd tar layer holding the
whole rootfs, and a config labelled with the env's name, its packages and
the fingerprint of the catalog entry it was made from (which a pull records,
so an image published from an older package list shows as stale).

Imports: images.*, errors and the standard library.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from roost.errors import ImageError, operator_remedy
from roost.images.build import ProgressFn, finish_rootfs
from roost.images.cache import MARKER, EnvImage, ImageCache, tree_size
from roost.images.catalog import EnvSpec, env_spec
from roost.images.freshness import image_built_from

ENV_LABEL = "dev.roost.env"
PACKAGES_LABEL = "dev.roost.packages"
BUILT_FROM_LABEL = "dev.roost.built-from"


def pull_into_cache(cache: ImageCache, spec: EnvSpec, reference: str, progress: ProgressFn | None) -> EnvImage:
    """Pull `reference`, verify every blob, unpack its layers, and cache it as `spec`.

    The caller holds the env's cache lock.

    Raises:
        ImageError: any registry or layer failure; nothing partial is left in the cache.
    """
    from roost.images.layers import apply_layer
    from roost.images.oci import RegistryClient, parse_reference  # httpx: only when a registry is used

    ref = parse_reference(reference)
    cache.ensure()
    client = RegistryClient(ref.registry)
    try:
        pulled = client.pull(ref.repository, ref.reference, cache.blobs, progress)
    finally:
        client.close()
    key = pulled.digest.replace(":", "-")
    blobs = [pulled.digest, *(layer.digest for layer in (pulled.manifest.config, *pulled.manifest.layers))]
    with cache.staging("pull") as staged:
        root = staged / "rootfs"
        root.mkdir()
        for index, layer_path in enumerate(pulled.layer_paths, start=1):
            if progress:
                progress(f"unpacking layer {index}/{len(pulled.layer_paths)}", index - 1, len(pulled.layer_paths))
            apply_layer(layer_path, root)
        (root / MARKER).unlink(missing_ok=True)  # a published image may carry its builder's marker
        finish_rootfs(spec, root)
        image = EnvImage(
            env=spec.name,
            key=key,
            source="registry",
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            size_bytes=tree_size(root),
            digest=pulled.digest,
            packages=spec.packages,
            details={"reference": reference, "blobs": blobs},
            built_from=_label(pulled.config_path, BUILT_FROM_LABEL),
        )
        return cache.commit(root, image)


def push_env(cache: ImageCache, env: str, reference: str, progress: ProgressFn | None = None) -> str:
    """Publish the cached image of `env` to `reference` (host[:port]/repo:tag); return the digest.

    Raises:
        ImageError: not_cached when `env` has no cached image; registry failures.
    """
    from roost.images.layers import layer_from_directory
    from roost.images.oci import RegistryClient, parse_reference

    spec = env_spec(env)
    image = cache.lookup(env)
    if image is None:
        raise ImageError(
            f"{env} is not in the image cache",
            code="not_cached",
            remedy=operator_remedy("build it first", "env_build", env),
        )
    ref = parse_reference(reference)
    with cache.staging("push") as staged:
        layer = staged / "layer.tar.gz"
        if progress:
            progress("packing the rootfs", 0, 2)
        digests = layer_from_directory(cache.rootfs(image.key), layer)
        if progress:
            progress("uploading", 1, 2)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": _labels(spec, image)},
        }
        client = RegistryClient(ref.registry)
        try:
            digest = client.push(ref.repository, ref.reference, layer, digests, config)
        finally:
            client.close()
        if progress:
            progress("done", 2, 2)
        return digest


def _labels(spec: EnvSpec, image: EnvImage) -> dict[str, str]:
    labels = {ENV_LABEL: spec.name, PACKAGES_LABEL: ",".join(image.packages or spec.packages)}
    built_from = image_built_from(image)
    if built_from is not None:
        labels[BUILT_FROM_LABEL] = built_from
    return labels


def _label(config_path: Path, name: str) -> str | None:
    """One label of a pulled image's (verified) config, if it has it."""
    try:
        labels = json.loads(config_path.read_bytes()).get("config", {}).get("Labels") or {}
    except (OSError, ValueError, AttributeError):
        return None
    value = labels.get(name) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else None
