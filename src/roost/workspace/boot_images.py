"""What a workspace boots from, made ready before its backend is asked to boot it.

A backend says what it boots from (`Backend.image_kind`): nothing of the
image cache, the environment's root filesystem (owned by the ids of the
backend's user namespace), or a microVM guest image built from that
environment (kernel, initramfs, root disk). Both are prepared here, with
progress for long pulls and builds, and for a create before any record
exists: a failed build leaves nothing behind. A start needs again only a
root filesystem; a microVM boots the disk copy and kernel it kept. A custom env
(images.recipes) boots as its base rootfs with its layers over it. The agent
runs on the image's own python3, or on roost's bundle for an image without one.

Imports: backends (the seam), config, errors, images, store records and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.backends import AgentPython, Backend, GuestBootImage
from roost.config import images_dir
from roost.errors import NotFound
from roost.images.build import ProgressFn
from roost.images.cache import MARKER, EnvImage, ImageCache
from roost.images.flatten import flattened
from roost.images.manager import ensure_image
from roost.images.python_bundle import BUNDLE_INTERPRETER, BUNDLE_MOUNT, bundle_command, ensure_bundle
from roost.images.recipes import CustomEnv, RecipeStore, custom_env, layer_chain
from roost.images.vm.build import ensure_guest_image
from roost.store.records import WorkspaceRecord


@dataclass(frozen=True)
class BootImage:
    """What a new workspace boots from (for its `CreateSpec`), and the key of the environment
    image it is made from, which its record keeps (None: its backend needs none)."""

    key: str | None = None
    rootfs: str | None = None
    guest_image: GuestBootImage | None = None
    agent_python: AgentPython = field(default_factory=AgentPython)
    # A custom env: its layers over `rootfs` (top first) and its recipe's variables.
    layers: tuple[str, ...] = ()
    env_vars: tuple[tuple[str, str], ...] = ()


def for_create(home: Path, backend: Backend[Any], env: str, progress: ProgressFn | None = None) -> BootImage:
    """Pull or build what a new workspace of `env` on `backend` boots from, unless cached.

    Raises:
        ImageError: the environment image or the guest image cannot be had, or bundle_failed.
        NotFound: env_not_found.
    """
    cache = ImageCache(images_dir(home))
    custom = custom_env(cache, env)
    if custom is not None:
        return _custom(cache, backend, custom, None, progress)
    if backend.image_kind == "none":
        return BootImage()
    image = ensure_image(cache, env, progress)
    if backend.image_kind == "guest":
        return BootImage(image.key, guest_image=ensure_guest_image(cache, env, progress))
    rootfs = str(cache.shifted_rootfs(image.key, *backend.rootfs_id_offset(None)))
    return BootImage(image.key, rootfs=rootfs, agent_python=_agent_python(cache, image))


def _agent_python(cache: ImageCache, image: EnvImage | None) -> AgentPython:
    """The image's own python3, or roost's bundle (built on first use) when the image has none it can use.

    Raises:
        ImageError: bundle_failed.
    """
    if image is None:
        return AgentPython()
    if image.interpreter != BUNDLE_INTERPRETER:
        return AgentPython((image.interpreter,))
    return AgentPython(tuple(bundle_command()), bundle=str(ensure_bundle(cache)), bundle_mount=BUNDLE_MOUNT)


def _custom(
    cache: ImageCache, backend: Backend[Any], custom: CustomEnv, boot: Any, progress: ProgressFn | None
) -> BootImage:
    """A custom env's boot image: its base rootfs and its layers (each shifted to the workspace's ids)."""
    if backend.image_kind == "none":
        return BootImage(env_vars=custom.env_vars)
    if backend.image_kind == "guest":
        guest = ensure_guest_image(cache, custom.name, progress, env_image=flattened(cache, custom))
        return BootImage(custom.key, guest_image=guest)
    if not (cache.rootfs(custom.base_key) / MARKER).is_file():
        raise _missing(custom.name)
    offsets = backend.rootfs_id_offset(boot)
    store = RecipeStore(cache)
    layers = tuple(str(cache.shifted_rootfs(k, *offsets, source=store.layer(k))) for k in reversed(custom.layers))
    rootfs = str(cache.shifted_rootfs(custom.base_key, *offsets))
    python = _agent_python(cache, cache.image_of(custom.base_key))  # what the agent ran on in the base
    return BootImage(custom.key, rootfs=rootfs, agent_python=python, layers=layers, env_vars=custom.env_vars)


def _missing(env: str) -> NotFound:
    return NotFound(
        f"the image this workspace was made from ({env}) is no longer cached",
        code="image_missing",
        hint="its changes outside /workspace cannot be kept; export /workspace and create a new one",
    )


def for_start(home: Path, backend: Backend[Any], record: WorkspaceRecord) -> BootImage:
    """What a stopped workspace boots from again (empty: its backend needs nothing of the cache).

    Raises:
        NotFound: image_missing when the image it was made from is no longer cached.
        ImageError: the shifted copy cannot be made, or bundle_failed.
    """
    cache = ImageCache(images_dir(home))
    if backend.image_kind == "none":
        custom = custom_env(cache, record.env)
        return BootImage(env_vars=custom.env_vars if custom else ())
    if backend.image_kind != "rootfs" or record.image is None:
        return BootImage()
    layered = layer_chain(cache, record.image)
    if layered is not None:
        return _custom(cache, backend, layered, record.boot, None)
    if not cache.rootfs(record.image).is_dir():
        raise _missing(record.env)
    rootfs = str(cache.shifted_rootfs(record.image, *backend.rootfs_id_offset(record.boot)))
    python = _agent_python(cache, cache.image_of(record.image))
    flat = custom_env(cache, record.env)  # a pulled custom env: one rootfs, and its variables
    env_vars = flat.env_vars if flat is not None and flat.key == record.image else ()
    return BootImage(record.image, rootfs=rootfs, agent_python=python, env_vars=env_vars)
