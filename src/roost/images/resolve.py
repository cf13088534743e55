"""What an env name means: roost's catalog, a custom env, or an OCI image reference.

One order everywhere a name is taken (`workspace create`, `run`, the SDK, MCP, `env` commands):

1. the built-in catalog (`debian:12` is always roost's, never Docker Hub's);
2. custom envs (recipes in the image cache, `roost.images.recipes`), when a cache is given;
3. otherwise an image reference: `host[:port]/repo[:tag]`, `...@sha256:<hex>`, or a Docker Hub
   short name (`python:3.12-slim` is `docker.io/library/python:3.12-slim`).

A name that is none of these is `env_not_found`.

Imports: errors, images.cache, images.catalog, images.oci (reference parsing), images.recipes and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from roost.errors import InvalidArgument, NotFound, Remedy
from roost.images.cache import ImageCache
from roost.images.catalog import CATALOG, EnvSpec
from roost.images.oci import ImageReference, parse_reference
from roost.images.recipes import CustomEnv, custom_env

__all__ = ["EnvSource", "resolve_env"]


@dataclass(frozen=True)
class EnvSource:
    """A resolved env name. `spec` is set for catalog envs, `custom` for custom envs, `image` for image references."""

    name: str
    kind: Literal["catalog", "custom", "image"]
    spec: EnvSpec | None = None
    image: ImageReference | None = None
    custom: CustomEnv | None = None

    @property
    def canonical(self) -> str:
        """The name the image cache knows it by: an image reference in full (`docker.io/library/x:1`)."""
        if self.image is None:
            return self.name
        separator = "@" if self.image.reference.startswith("sha256:") else ":"
        return f"{self.image.registry}/{self.image.repository}{separator}{self.image.reference}"


def resolve_env(name: str, cache: ImageCache | None = None) -> EnvSource:
    """Resolve `name` in the order catalog, custom env (in `cache`; none without one), image reference.

    Raises:
        NotFound: env_not_found when `name` is none of them.
    """
    spec = CATALOG.get(name)
    if spec is not None:
        return EnvSource(name, "catalog", spec=spec)
    custom = custom_env(cache, name) if cache is not None else None
    if custom is not None:
        return EnvSource(name, "custom", custom=custom)
    try:
        return EnvSource(name, "image", image=parse_reference(name))
    except InvalidArgument:
        raise NotFound(
            f"unknown environment {name!r}: not in the catalog and not an image reference",
            code="env_not_found",
            remedy=Remedy(
                f"known environments: {', '.join(sorted(CATALOG))}, or an image such as "
                "registry.example:5000/team/ci:1 or python:3.12-slim; list them",
                "env_list",
            ),
        ) from None
