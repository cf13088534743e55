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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.backends import Backend, GuestBootImage
from roost.config import images_dir
from roost.errors import NotFound
from roost.images.build import ProgressFn
from roost.images.cache import ImageCache
from roost.images.manager import ensure_image
from roost.images.vm.build import ensure_guest_image
from roost.store.records import WorkspaceRecord


@dataclass(frozen=True)
class BootImage:
    """What a new workspace boots from (for its `CreateSpec`), and the key of the environment
    image it is made from, which its record keeps (None: its backend needs none)."""

    key: str | None = None
    rootfs: str | None = None
    guest_image: GuestBootImage | None = None


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
    return BootImage(image.key, rootfs=str(cache.shifted_rootfs(image.key, *backend.rootfs_id_offset(None))))


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
