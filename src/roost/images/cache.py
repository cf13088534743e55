"""The content-addressed image cache: `$ROOST_IMAGES` (default `$ROOST_HOME/images`).

Layout::

    blobs/sha256/<hex>      OCI blobs (layers, configs), verified on arrival
    rootfs/<key>/           one unpacked root filesystem per content key
    idmapped/<key>@u<U>g<G> a copy owned by a user namespace's host ids (see idshift)
    envs/<env>.json         which rootfs an environment name currently means
    tmp/                    builds and pulls in progress

A rootfs only ever appears under `rootfs/` by rename from `tmp/` after it is
complete and has its `.roost-image.json` marker, so a crash mid-build never
leaves a usable-looking half image; leftovers in `tmp/` are swept by the
next build or `prune`.

Imports: errors, store (atomic writes, locks) and the standard library.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import ImageError, operator_remedy
from roost.images.idshift import make_shifted, shifted_name
from roost.store.atomic import write_atomic
from roost.store.locks import file_lock

MARKER = ".roost-image.json"
# A tmp/ entry older than this belongs to a build that died.
_STALE_SECONDS = 6 * 3600
# The way out of a full image disk, for every step that can run into one.
FREE_IMAGE_SPACE = operator_remedy("point ROOST_IMAGES at a larger disk, or free some space", "env_prune")


@dataclass(frozen=True)
class EnvImage:
    """One cached environment image."""

    env: str
    key: str
    source: str
    created_at: str
    size_bytes: int
    digest: str | None = None
    packages: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    # The python3 that runs the agent, as the workspace sees it: the image's own, or roost's
    # bundle (`python_bundle.BUNDLE_INTERPRETER`), decided when the image was pulled.
    interpreter: str = "/usr/bin/python3"
    # The fingerprint of the catalog entry it was made from (`EnvSpec.built_from`); None: unknown.
    built_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["packages"] = list(self.packages)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvImage:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["packages"] = tuple(values.get("packages", ()))
        return cls(**values)


def _safe_name(env: str) -> str:
    return env.replace("/", "_").replace(":", "_")


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


class ImageCache:
    """Where environment root filesystems live on this host."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self._rootfs = root / "rootfs"
        self._envs = root / "envs"
        self._tmp = root / "tmp"
        self._idmapped = root / "idmapped"

    def ensure(self) -> None:
        """Create the cache's directories (0700), tightening its top directory if loose.

        Rootfs trees inside keep the modes their images give them (a sandbox needs them); the
        top directory being 0700 is what keeps other users out.
        """
        for directory in (self.root, self.blobs, self._rootfs, self._envs, self._tmp):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o077:
            os.chmod(self.root, 0o700)

    @contextmanager
    def lock(self, name: str = "cache", timeout: float = 1800.0) -> Iterator[None]:
        """Serialise builds and pulls of one env (and prune) across processes."""
        self.ensure()
        with file_lock(self.root / f".{_safe_name(name)}.lock", timeout=timeout, what="image cache"):
            yield

    def rootfs(self, key: str) -> Path:
        return self._rootfs / key

    def shifted_rootfs(self, key: str, uid_offset: int, gid_offset: int, source: Path | None = None) -> Path:
        """The rootfs of `key` (or the tree `source` cached under that key: a layer) owned by ids
        shifted by the offsets, made on first use.

        Raises:
            ImageError: image_missing, copy_failed, disk_full, image_invalid.
        """
        source = source or self.rootfs(key)
        if uid_offset == 0 and gid_offset == 0:
            return source
        final = self._idmapped / shifted_name(key, uid_offset, gid_offset)
        if (final / MARKER).is_file():
            return final
        if not (source / MARKER).is_file():
            raise ImageError(f"image {key} is not cached", code="image_missing", hint="pull or build it again")
        with self.lock(f"idmap-{key}"):
            if (final / MARKER).is_file():
                return final  # another process made it while we waited
            self._idmapped.mkdir(mode=0o700, exist_ok=True)
            with self.staging("idmap") as staged:
                shifted = make_shifted(source, staged, uid_offset, gid_offset)
                if final.exists():
                    shutil.rmtree(final)  # a copy whose making was interrupted
                os.rename(shifted, final)
        return final

    @contextmanager
    def staging(self, prefix: str) -> Iterator[Path]:
        """A fresh directory under tmp/, removed afterwards unless committed."""
        self.ensure()
        path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self._tmp))
        try:
            yield path
        finally:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def commit(self, staged: Path, image: EnvImage, *, name_it: bool = True) -> EnvImage:
        """Move a finished rootfs into place and point the env name at it (unless not `name_it`:
        a custom env's rootfs, which its own record names)."""
        write_atomic(staged / MARKER, json.dumps(image.to_dict(), indent=2).encode(), mode=0o644)
        final = self.rootfs(image.key)
        if final.exists():
            shutil.rmtree(staged, ignore_errors=True)  # same content already cached
        else:
            os.rename(staged, final)
        os.chmod(final, 0o755)  # the sandbox's / must be traversable
        if name_it:
            record = json.dumps(image.to_dict(), indent=2).encode()
            write_atomic(self._envs / f"{_safe_name(image.env)}.json", record)
        return image

    def lookup(self, env: str) -> EnvImage | None:
        """The cached image for `env`, if it is complete."""
        try:
            data = json.loads((self._envs / f"{_safe_name(env)}.json").read_text())
            image = EnvImage.from_dict(data)
        except (OSError, ValueError, TypeError):
            return None
        if image.env != env or not (self.rootfs(image.key) / MARKER).is_file():
            return None
        return image

    def image_of(self, key: str) -> EnvImage | None:
        """The image cached under `key` (its rootfs's marker), if complete."""
        try:
            return EnvImage.from_dict(json.loads((self.rootfs(key) / MARKER).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def point(self, env: str, image: EnvImage) -> EnvImage:
        """Let the name `env` mean the already cached `image` (another name for the same content)."""
        named = dataclasses.replace(image, env=env)
        write_atomic(self._envs / f"{_safe_name(env)}.json", json.dumps(named.to_dict(), indent=2).encode())
        return named

    def images(self) -> list[EnvImage]:
        if not self._envs.is_dir():
            return []
        found = []
        for path in sorted(self._envs.glob("*.json")):
            try:
                image = EnvImage.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if (self.rootfs(image.key) / MARKER).is_file():
                found.append(image)
        return found

    def forget(self, env: str) -> None:
        (self._envs / f"{_safe_name(env)}.json").unlink(missing_ok=True)

    def prune(self, in_use: set[str]) -> list[str]:
        """Remove rootfs dirs no env name or workspace uses, stale tmp entries, unused blobs.

        Returns the removed keys.
        """
        self.ensure()
        referenced = {image.key for image in self.images()} | in_use
        removed = []
        for path in self._rootfs.iterdir():
            if path.name not in referenced:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        if self._idmapped.is_dir():
            for path in self._idmapped.iterdir():
                if path.name.partition("@")[0] not in referenced:
                    shutil.rmtree(path, ignore_errors=True)
        now = time.time()
        for path in self._tmp.iterdir():
            if now - path.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        live_blobs = {d for image in self.images() for d in image.details.get("blobs", [])}
        blob_dir = self.blobs / "sha256"
        if blob_dir.is_dir():
            for blob in blob_dir.iterdir():
                if f"sha256:{blob.name}" not in live_blobs:
                    blob.unlink(missing_ok=True)
        return removed


def check_free_space(path: Path, needed_bytes: int) -> None:
    """Fail early, with the right error, when a build cannot fit.

    Raises:
        ImageError: disk_full.
    """
    path.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(path)
    free = stats.f_bavail * stats.f_frsize
    if free < needed_bytes:
        raise ImageError(
            f"only {free // (1024 * 1024)} MiB free under {path}; an image needs about {needed_bytes // (1024 * 1024)} MiB",
            code="disk_full",
            remedy=FREE_IMAGE_SPACE,
        )
