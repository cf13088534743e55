"""Environment images end to end: a real built env through a real registry and back into a
sandbox, and every way getting an image can fail leaving nothing usable-looking in the cache.

The real debian:12 comes from the shared image cache (`make test` builds it first); the
registry is Debian's docker-registry on 127.0.0.1 (tests/integration/registry.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from registry import blob_data_path

from helpers import SHARED_IMAGES, delete_all_workspaces, discard_tree
from roost import Roost
from roost.backends import get_backend
from roost.config import IMAGES_ENV
from roost.errors import ImageError
from roost.images import manager
from roost.images.build import tree_digest
from roost.images.cache import MARKER, EnvImage, ImageCache
from roost.images.catalog import CATALOG
from roost.images.freshness import current_image
from roost.images.manager import REGISTRY_ENV, SOURCES_ENV, ensure_image
from roost.images.oci import RegistryClient, blob_path

SANDBOX = get_backend("sandbox").availability()
needs_sandbox = pytest.mark.skipif(
    not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"
)
CALL_TIMEOUT = 60.0

pytestmark = pytest.mark.integration


@contextmanager
def own_image_settings(**env: str) -> Iterator[None]:
    """Run a block with only the given image settings: each home's `images` is its cache."""
    with pytest.MonkeyPatch.context() as patched:
        for name in (IMAGES_ENV, REGISTRY_ENV, SOURCES_ENV):
            patched.delenv(name, raising=False)
        for name, value in env.items():
            patched.setenv(name, value)
        yield


def new_home(parent: Path, images: Path | None = None) -> Path:
    """A fresh ROOST_HOME; its `images` links to `images` when given, else it starts empty."""
    home = parent / f"home-{uuid.uuid4().hex[:8]}"
    home.mkdir(mode=0o700, parents=True)
    if images is not None:
        (home / "images").symlink_to(images, target_is_directory=True)
    return home


def discard(client: Roost) -> None:
    """Delete the client's workspaces, then its image cache (pulled images are large)."""
    delete_all_workspaces(client)
    client.close()
    discard_tree(client.home / "images")


def leftovers(images: Path) -> dict[str, list[str]]:
    """What a failed build or pull left where a usable image would live."""
    return {
        part: sorted(os.listdir(images / part)) if (images / part).is_dir() else []
        for part in ("rootfs", "envs", "tmp")
    }


NOTHING = {"rootfs": [], "envs": [], "tmp": []}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a real env through the registry ------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    prefix: str  # host:port/roost, what `--registry` takes
    digest: str  # the manifest digest push_env returned


@pytest.fixture
def published(local_registry: str, tmp_path: Path) -> Published:
    """The shared cache's debian:12 pushed to the local registry as roost/debian:12 (~3-7 s)."""
    if current_image(ImageCache(SHARED_IMAGES), "debian:12") is None:
        pytest.skip(f"debian:12 is not in the shared image cache {SHARED_IMAGES}; run `make images`")
    client = Roost(home=new_home(tmp_path, SHARED_IMAGES), backend="sandbox")
    try:
        with own_image_settings():
            digest = client.push_env("debian:12", f"{local_registry}/roost/debian:12")
    finally:
        discard(client)
    return Published(f"{local_registry}/roost", digest)


@pytest.fixture
def fresh_clients(tmp_path: Path) -> Iterator[Callable[[], Roost]]:
    """Makes clients that each have their own empty image cache; all are discarded afterwards."""
    made: list[Roost] = []

    def make() -> Roost:
        made.append(Roost(home=new_home(tmp_path), backend="sandbox"))
        return made[-1]

    try:
        yield make
    finally:
        for client in made:
            discard(client)


@pytest.fixture
def fresh(fresh_clients: Callable[[], Roost]) -> Roost:
    """A client with its own empty image cache."""
    return fresh_clients()


# One test, not three: under `pytest -n` separate tests land on separate workers, and each
# would push and pull the 200 MB image again.
@needs_sandbox
def test_a_built_env_pushed_to_a_registry_comes_back_by_tag_and_by_digest_and_runs_git(
    published: Published, fresh_clients: Callable[[], Roost]
) -> None:
    by_tag, by_digest = fresh_clients(), fresh_clients()

    with own_image_settings():
        pulled = by_tag.pull_env("debian:12", registry=published.prefix)
        assert by_tag.inspect_env("debian:12") == pulled
    assert pulled.cached
    assert pulled.source == "registry"
    assert pulled.digest == published.digest
    assert pulled.key == published.digest.replace(":", "-")
    assert pulled.size_bytes and pulled.size_bytes > 50 * 1024 * 1024

    # A by-digest pull is a catalog pin (registry + digest); ROOST_REGISTRY or `--registry`
    # would replace it with a tag.
    pinned = dataclasses.replace(CATALOG["debian:12"], registry=published.prefix, digest=published.digest)
    reference = f"{published.prefix}/debian@{published.digest}"
    with own_image_settings(), pytest.MonkeyPatch.context() as patched:
        patched.setitem(CATALOG, "debian:12", pinned)
        assert by_digest.inspect_env("debian:12").registry_reference == reference
        assert by_digest.pull_env("debian:12").digest == published.digest
    cached = ImageCache(by_digest.home / "images").lookup("debian:12")
    assert cached is not None and cached.details["reference"] == reference

    # Registry only: a missing image must fail here, never turn into a silent local build.
    with own_image_settings(**{SOURCES_ENV: "registry"}), by_digest.create_workspace("debian:12") as ws:
        result = ws.exec(["git", "--version"], timeout=30)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("git version ")


# -- a registry that serves bad bytes, or none at all ------------------------------------------


def cache_tiny_env(images: Path, env: str = "debian:12-base") -> None:
    """Put a tiny, unique rootfs in `images` as `env` (it has the commands the catalog expects)."""
    cache = ImageCache(images)
    with cache.staging("fake") as staged:
        root = staged / "rootfs"
        (root / "usr" / "bin").mkdir(parents=True)
        for command in ("python3", "sh"):
            (root / "usr" / "bin" / command).write_text("#!/bin/true\n")
            (root / "usr" / "bin" / command).chmod(0o755)
        (root / "etc").mkdir()
        (root / "etc" / "unique").write_text(uuid.uuid4().hex)
        key = tree_digest(root).replace("sha256:", "sha256-")
        cache.commit(root, EnvImage(env=env, key=key, source="build", created_at="2024-01-01T00:00:00Z", size_bytes=1))


def test_a_corrupted_blob_in_the_registry_is_refused_and_nothing_is_cached(
    local_registry: str, local_registry_storage: Path, tmp_path: Path, fresh: Roost
) -> None:
    repository = f"corrupt-{uuid.uuid4().hex[:8]}"
    source_images = tmp_path / "source-images"
    cache_tiny_env(source_images)
    publisher = Roost(home=new_home(tmp_path, source_images), backend="sandbox")
    try:
        with own_image_settings():
            publisher.push_env("debian:12-base", f"{local_registry}/{repository}/debian:12-base")
    finally:
        discard(publisher)
    with RegistryClient(local_registry) as registry:
        (layer,) = registry.resolve(f"{repository}/debian", "12-base").layers
    stored = blob_data_path(local_registry_storage, layer.digest)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    with own_image_settings(), pytest.raises(ImageError) as caught:
        fresh.pull_env("debian:12-base", registry=f"{local_registry}/{repository}")

    assert caught.value.code == "digest_mismatch"
    assert caught.value.hint
    images = fresh.home / "images"
    assert leftovers(images) == NOTHING
    assert not blob_path(images / "blobs", layer.digest).exists()
    assert [p.name for p in images.rglob("*.partial")] == []
    with own_image_settings():
        assert not fresh.inspect_env("debian:12-base").cached


def test_an_unreachable_registry_is_registry_unreachable_and_caches_nothing(fresh: Roost) -> None:
    with own_image_settings(), pytest.raises(ImageError) as caught:
        fresh.pull_env("debian:12", registry=f"127.0.0.1:{closed_port()}/roost")
    assert caught.value.code == "registry_unreachable"
    assert caught.value.hint
    images = fresh.home / "images"
    assert leftovers(images) == NOTHING
    assert list((images / "blobs").rglob("*")) == []


# -- image sources ------------------------------------------------------------------------------


def test_registry_only_sources_without_a_registry_is_a_clear_error(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    with own_image_settings(**{SOURCES_ENV: "registry"}), pytest.raises(ImageError) as caught:
        ensure_image(cache, "debian:12")
    assert caught.value.code == "image_unavailable"
    assert "registry" in caught.value.message
    assert REGISTRY_ENV in caught.value.hint
    assert leftovers(cache.root) == NOTHING


@needs_sandbox
def test_creating_a_workspace_with_no_usable_image_source_leaves_no_workspace(fresh: Roost) -> None:
    with own_image_settings(**{SOURCES_ENV: "registry"}), pytest.raises(ImageError) as caught:
        fresh.create_workspace("debian:12")
    assert caught.value.code == "image_unavailable"
    workspaces = fresh.home / "workspaces"
    assert not workspaces.exists() or os.listdir(workspaces) == []


def test_an_unknown_image_source_is_invalid_sources(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    with own_image_settings(**{SOURCES_ENV: "bogus"}), pytest.raises(ImageError) as caught:
        ensure_image(cache, "debian:12")
    assert caught.value.code == "invalid_sources"
    assert "bogus" in caught.value.message
    assert caught.value.hint


# -- disk full ----------------------------------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount a tmpfs of N MiB under tmp_path (root only); every one is unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(mib: int) -> Path:
        point = tmp_path / f"tmpfs-{len(mounted)}"
        point.mkdir()
        argv = ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "roost-test", str(point)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in reversed(mounted):
            done = subprocess.run(["umount", str(point)], capture_output=True, timeout=10, check=False)
            if done.returncode != 0:  # something is still mounted inside: detach it all
                subprocess.run(["umount", "--recursive", "--lazy", str(point)], capture_output=True, timeout=10)


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(f"{path}/")]


def test_a_build_that_cannot_fit_fails_at_once_with_disk_full(
    tiny_tmpfs: Callable[[int], Path], tmp_path: Path
) -> None:
    disk = tiny_tmpfs(16)
    client = Roost(home=new_home(tmp_path, disk), backend="sandbox")
    started = time.monotonic()
    with own_image_settings(), pytest.raises(ImageError) as caught:
        client.build_env("debian:12")
    assert time.monotonic() - started < 5.0, "the free-space check must come before any download"
    assert caught.value.code == "disk_full"
    assert caught.value.hint
    assert leftovers(disk) == NOTHING
    client.close()


def test_running_out_of_space_mid_build_is_disk_full_and_leaves_nothing_partial(
    tiny_tmpfs: Callable[[int], Path], tmp_path: Path
) -> None:
    disk = tiny_tmpfs(48)
    client = Roost(home=new_home(tmp_path, disk), backend="sandbox")
    # Skip the early free-space check so the bootstrap tool itself hits ENOSPC.
    with own_image_settings(), pytest.MonkeyPatch.context() as patched:
        patched.setattr(manager, "BUILD_SPACE_BYTES", 0)
        with pytest.raises(ImageError) as caught:
            client.build_env("debian:12-base")
    assert caught.value.code == "disk_full", caught.value.to_dict()
    assert "space" in caught.value.message
    assert leftovers(disk) == NOTHING
    assert mounts_under(disk) == []  # the tool's /proc, /sys, /dev mounts in the target are gone
    with own_image_settings():
        assert not client.inspect_env("debian:12-base").cached
    client.close()


# -- bubblewrap missing -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def path_without_bwrap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with every tool of this host but bwrap: /usr/bin mirrored by symlinks, minus bwrap."""
    farm = tmp_path_factory.mktemp("bin-without-bwrap")
    for entry in os.scandir("/usr/bin"):
        if entry.name != "bwrap":
            (farm / entry.name).symlink_to(entry.path)
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not os.path.exists(f"{d}/bwrap")]
    path = os.pathsep.join([str(farm), *kept])
    assert shutil.which("bwrap", path=path) is None
    return path


def cli(home: Path, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "ROOST_HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "roost", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        check=False,
    )


def error_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    assert lines, f"no JSON error on stderr: {proc.stderr!r}"
    error: dict[str, Any] = json.loads(lines[-1])["error"]
    return error


def test_without_bwrap_doctor_says_the_sandbox_is_unavailable_and_why(path_without_bwrap: str, tmp_path: Path) -> None:
    proc = cli(tmp_path / "home", path_without_bwrap, "doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    sandbox = report["backends"]["sandbox"]
    assert sandbox["ok"] is False
    assert "bubblewrap" in sandbox["detail"]
    assert report["default_backend"] != "sandbox"
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["bubblewrap"]["ok"] is False


def test_without_bwrap_a_sandbox_workspace_is_refused_and_nothing_is_left(
    path_without_bwrap: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    proc = cli(home, path_without_bwrap, "workspace", "create", "debian:12", "--backend", "sandbox", "--json")
    assert proc.returncode == 5, proc.stderr
    error = error_of(proc)
    assert error["code"] == "backend_unavailable"
    assert "bubblewrap" in error["message"]
    assert error["hint"]
    assert proc.stdout == ""
    assert not (home / "workspaces").exists() or os.listdir(home / "workspaces") == []


# -- interrupted builds -------------------------------------------------------------------------


def test_a_build_interrupted_in_staging_leaves_nothing_usable(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    with pytest.raises(KeyboardInterrupt), cache.staging("build") as staged:
        (staged / "rootfs" / "usr" / "bin").mkdir(parents=True)
        (staged / "rootfs" / "usr" / "bin" / "python3").write_text("half")
        raise KeyboardInterrupt
    assert leftovers(cache.root) == NOTHING
    assert cache.lookup("debian:12") is None
    assert cache.images() == []


def test_an_env_whose_rootfs_lacks_the_completion_marker_is_not_used(tmp_path: Path) -> None:
    images = tmp_path / "images"
    cache_tiny_env(images)
    cache = ImageCache(images)
    image = cache.lookup("debian:12-base")
    assert image is not None
    (cache.rootfs(image.key) / MARKER).unlink()  # as if the process died between unpack and commit
    assert cache.lookup("debian:12-base") is None
    assert cache.images() == []


def test_prune_sweeps_stale_staging_dirs_and_unreferenced_rootfs_but_keeps_fresh_work(tmp_path: Path) -> None:
    images = tmp_path / "images"
    cache_tiny_env(images)
    cache = ImageCache(images)
    kept = cache.lookup("debian:12-base")
    assert kept is not None
    stale = images / "tmp" / "build-stale"
    (stale / "rootfs" / "etc").mkdir(parents=True)
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(stale, (seven_hours_ago, seven_hours_ago))
    in_progress = images / "tmp" / "build-running"
    in_progress.mkdir()
    orphan = cache.rootfs("sha256-" + "0" * 64)
    (orphan / "etc").mkdir(parents=True)

    removed = cache.prune(in_use=set())

    assert removed == [orphan.name]
    assert not stale.exists()
    assert in_progress.exists(), "a recent staging dir may belong to a build still running"
    assert cache.lookup("debian:12-base") == kept
