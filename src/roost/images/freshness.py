"""Whether a cached image still is its env: made from the catalog entry as it is now.

An image records the fingerprint of what it was made from (`EnvImage.built_from`,
`EnvSpec.built_from`: the suite and package list). When an entry's packages
change, images made before no longer pass for it: they show as stale, and
the next workspace or `env build --if-missing` makes a new one. Workspaces
that exist keep the image they were made from.

Imports: images.cache, images.catalog.
"""

from __future__ import annotations

from roost.images.cache import EnvImage, ImageCache
from roost.images.catalog import env_spec, package_fingerprint


def image_built_from(image: EnvImage) -> str | None:
    """The fingerprint of what `image` was made from; for a build recorded before images kept one,
    worked out from the suite and packages it recorded (None when unknown)."""
    if image.built_from is not None:
        return image.built_from
    suite = image.details.get("suite")
    if image.source == "build" and isinstance(suite, str) and image.packages:
        return package_fingerprint(suite, image.packages)
    return None


def is_current(image: EnvImage) -> bool:
    """Whether `image` was made from its env's catalog entry as it is now.

    Raises:
        NotFound: env_not_found when its env is no longer in the catalog.
    """
    return image_built_from(image) == env_spec(image.env).built_from


def current_image(cache: ImageCache, env: str) -> EnvImage | None:
    """The cached image for `env` if there is one and it is current (a stale one is not)."""
    image = cache.lookup(env)
    return image if image is not None and is_current(image) else None
