"""What a workspace boots from, made ready before its backend is asked to boot it.

A backend says what it boots from (`Backend.image_kind`): nothing of the
image cache, the environment's root filesystem (owned by the ids of the
backend's user namespace), or a microVM guest image built from that
environment (kernel, initramfs, root disk). Both are prepared here, with
progress for long pulls and builds, and for a create before any record
exists: a failed build leaves nothing behind. A start needs again only a
root filesystem; a microVM boots the disk copy and kernel it kept.

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
from roost.images.cache import EnvImage, ImageCache
from roost.images.manager import ensure_image
from roost.images.python_bundle import BUNDLE_INTERPRETER, BUNDLE_MOUNT, bundle_command, ensure_bundle
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


def for_create(home: Path, backend: Backend[Any], env: str, progress: ProgressFn | None = None) -> BootImage:
    """Pull or build what a new workspace of `env` on `backend` boots from, unless cached.

    Raises:
        ImageError: the environment image or the guest image cannot be had.
        NotFound: env_not_found.
    """
    if backend.image_kind == "none":
        return BootImage()
    cache = ImageCache(images_dir(home))
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


def agent_python_for_start(home: Path, backend: Backend[Any], record: WorkspaceRecord) -> AgentPython:
    """The python3 a stopped workspace's agent runs on again: what its image was given when pulled.

    Raises:
        ImageError: bundle_failed.
    """
    if backend.image_kind != "rootfs" or record.image is None:
        return AgentPython()
    cache = ImageCache(images_dir(home))
    return _agent_python(cache, cache.image_of(record.image))


def rootfs_for_start(home: Path, backend: Backend[Any], record: WorkspaceRecord) -> str | None:
    """The root filesystem a stopped workspace boots from again (None: its backend needs none).

    Raises:
        NotFound: image_missing when the image it was made from is no longer cached.
        ImageError: the shifted copy cannot be made.
    """
    if backend.image_kind != "rootfs" or record.image is None:
        return None
    cache = ImageCache(images_dir(home))
    if not cache.rootfs(record.image).is_dir():
        raise NotFound(
            f"the image this workspace was made from ({record.env}) is no longer cached",
            code="image_missing",
            hint="its changes outside /workspace cannot be kept; export /workspace and create a new one",
        )
    return str(cache.shifted_rootfs(record.image, *backend.rootfs_id_offset(record.boot)))
