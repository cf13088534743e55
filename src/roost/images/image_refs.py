"""Any OCI image as an env: pulled by reference, pinned to its manifest digest, cached by it.

A reference's tag is resolved to a manifest digest once, when it is first pulled; the env name
then keeps meaning that digest (workspaces record it as their image key) until `env pull REF`
asks the registry again. The root filesystem is cached under the manifest digest, so a
reference by digest that is cached (under any name) is used without a request to the registry
and without reading a blob. Layers are flattened into one root filesystem, every blob
checked against its digest and every member checked (layers.py). Whether the agent runs on
the image's python3 or roost's bundle is decided here, once (interpreter.py).

Imports: errors, images.* and the standard library.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from roost.errors import ImageError
from roost.images.build import ProgressFn, add_mount_points
from roost.images.cache import MARKER, EnvImage, ImageCache, tree_size
from roost.images.interpreter import choose_interpreter
from roost.images.layers import apply_layer
from roost.images.resolve import EnvSource

__all__ = ["ensure_reference_image", "pull_reference"]


def _key(digest: str) -> str:
    return digest.replace(":", "-")


def ensure_reference_image(cache: ImageCache, source: EnvSource, progress: ProgressFn | None = None) -> EnvImage:
    """The cached image for an image reference, pulled on first use.

    Raises:
        ImageError: any registry, layer or image_unsupported failure; nothing partial is cached.
    """
    name = source.canonical
    cached = cache.lookup(name) or _cached_by_digest(cache, source)
    if cached is not None:
        return cached
    with cache.lock(name):
        return cache.lookup(name) or pull_reference(cache, source, progress)


def _cached_by_digest(cache: ImageCache, source: EnvSource) -> EnvImage | None:
    """A reference by digest whose content is cached under another name: no registry, no blob."""
    assert source.image is not None
    digest = source.image.reference
    if not digest.startswith("sha256:"):
        return None
    image = cache.image_of(_key(digest))
    return None if image is None else cache.point(source.canonical, image)


def pull_reference(cache: ImageCache, source: EnvSource, progress: ProgressFn | None = None) -> EnvImage:
    """Resolve the reference to a manifest digest, then pull that digest (unless its rootfs is cached).

    The caller holds the name's cache lock.

    Raises:
        ImageError: registry failures, digest_mismatch, layer_rejected, image_unsupported.
    """
    from roost.images.oci import RegistryClient  # httpx: only when a registry is used

    ref = source.image
    assert ref is not None
    cache.ensure()
    with RegistryClient(ref.registry) as client:
        manifest = client.resolve(ref.repository, ref.reference)
        cached = cache.image_of(_key(manifest.digest))
        if cached is not None:
            return cache.point(source.canonical, cached)
        pulled = client.pull(ref.repository, manifest.digest, cache.blobs, progress)
    blobs = [pulled.digest, *(blob.digest for blob in (pulled.manifest.config, *pulled.manifest.layers))]
    architecture = _architecture(pulled.config_path.read_bytes())
    with cache.staging("pull") as staged:
        root = staged / "rootfs"
        root.mkdir()
        layers = pulled.layer_paths
        for index, layer_path in enumerate(layers, start=1):
            if progress:
                progress(f"unpacking layer {index}/{len(layers)}", index - 1, len(layers))
            apply_layer(layer_path, root)
        (root / MARKER).unlink(missing_ok=True)  # a published image may carry its builder's marker
        interpreter = choose_interpreter(root, source.name, architecture)
        add_mount_points(root)
        image = EnvImage(
            env=source.canonical,
            key=_key(pulled.digest),
            source="image",
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            size_bytes=tree_size(root),
            digest=pulled.digest,
            details={"reference": source.name, "blobs": blobs},
            interpreter=interpreter,
        )
        committed = cache.commit(root, image)
    if progress:
        progress("done", len(layers), len(layers))
    return committed


def _architecture(config: bytes) -> str | None:
    """The image config's `architecture` (None when it names none or cannot be read)."""
    try:
        value = json.loads(config).get("architecture")
    except (ValueError, AttributeError):
        return None
    if value is not None and not isinstance(value, str):
        raise ImageError("the image config's architecture is not a string", code="invalid_manifest")
    return value
