"""Any OCI image as a workspace's env, on the sandbox backend: images the tests build (busybox with
no python3 and no libc, the same with musl, the shared cache's Debian with python3), pushed to
the local registry, pulled by tag or digest, pinned to their digest, run with the image's own
python3 or roost's bundle.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_images import BUSYBOX, MUSL_LOADER, busybox_tree, musl_tree, push_tree
from registry import blob_data_path

from helpers import SHARED_IMAGES, delete_all_workspaces
from roost import Roost
from roost.backends import get_backend
from roost.config import IMAGES_ENV
from roost.errors import ImageError
from roost.images.cache import ImageCache
from roost.images.manager import REGISTRY_ENV, SOURCES_ENV
from roost.images.oci import RegistryClient
from roost.images.python_bundle import BUNDLE_INTERPRETER

SANDBOX = get_backend("sandbox").availability()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"),
    pytest.mark.skipif(
        not BUSYBOX.is_file(), reason="busybox-static is not installed (scripts/install-system-deps.sh)"
    ),
]
AGENT_ON_BUNDLE = "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"


@pytest.fixture
def roost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Roost]:
    """A client with its own empty image cache, on the sandbox backend."""
    for name in (IMAGES_ENV, REGISTRY_ENV, SOURCES_ENV):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    client = Roost(home=home, backend="sandbox")
    try:
        yield client
    finally:
        delete_all_workspaces(client)
        client.close()


def repository() -> str:
    return f"test/img-{uuid.uuid4().hex[:8]}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_image_without_python3_runs_the_agent_on_the_bundle_and_keeps_python3_off_path(
    roost: Roost, local_registry: str, tmp_path: Path
) -> None:
    repo = repository()
    reference = f"{local_registry}/{repo}:1"
    digest = push_tree(local_registry, busybox_tree(tmp_path), tmp_path, repository=repo, tag="1")

    with roost.create_workspace(reference) as ws:
        assert roost.workspace(ws.id).info().env == reference
        listing = ws.exec(["sh", "-c", "command -v python3 || echo none; echo $PATH"], timeout=30)
        processes = ws.exec(["sh", "-c", AGENT_ON_BUNDLE], timeout=30)
        readonly = ws.exec(["touch", "/opt/roost/python/planted"], timeout=30)
        ws.files.write("/workspace/note.txt", "from the host")
        copied = ws.exec(["cat", "/workspace/note.txt"], timeout=30)
        shell = ws.shells.open()
        ws.shells.write(shell.id, "echo shell-$((40+2))")
        seen = ws.shells.read(shell.id, wait_for_idle_ms=300, timeout_ms=5000, plain=True)

    assert listing.stdout.splitlines()[0] == "none"
    assert "/opt/roost" not in listing.stdout
    assert f"{BUNDLE_INTERPRETER} -I" in processes.stdout
    assert readonly.exit_code != 0 and "Read-only" in readonly.stderr
    assert copied.stdout == "from the host"
    assert "shell-42" in seen.data
    info = roost.inspect_env(reference)
    assert (info.cached, info.source, info.digest, info.interpreter) == (True, "image", digest, BUNDLE_INTERPRETER)
    assert info.key == digest.replace(":", "-")
    assert reference in [env.name for env in roost.envs()]


@pytest.mark.skipif(not MUSL_LOADER.exists(), reason="musl is not installed (scripts/install-system-deps.sh)")
def test_a_musl_image_runs_the_agent_on_the_bundle(roost: Roost, local_registry: str, tmp_path: Path) -> None:
    repo = repository()
    root = musl_tree(tmp_path)
    assert not list(root.rglob("ld-linux*")) and not list(root.rglob("libc.so.6"))
    push_tree(local_registry, root, tmp_path, repository=repo, tag="musl")

    with roost.create_workspace(f"{local_registry}/{repo}:musl") as ws:
        loader = ws.exec(["ls", "/lib"], timeout=30)
        processes = ws.exec(["sh", "-c", AGENT_ON_BUNDLE], timeout=30)
        python = ws.exec(["sh", "-c", "command -v python3 || echo none"], timeout=30)

    assert loader.stdout.split() == [MUSL_LOADER.name]
    assert f"{BUNDLE_INTERPRETER} -I" in processes.stdout
    assert python.stdout.strip() == "none"


def test_an_image_with_python3_runs_the_agent_on_its_own(roost: Roost, local_registry: str) -> None:
    shared = ImageCache(SHARED_IMAGES).lookup("debian:12")
    if shared is None:
        pytest.skip(f"debian:12 is not in the shared image cache {SHARED_IMAGES}; run `make images`")
    publisher = Roost(home=roost.home.parent / "publisher", backend="sandbox")
    publisher.home.mkdir(mode=0o700, exist_ok=True)
    (publisher.home / "images").symlink_to(SHARED_IMAGES, target_is_directory=True)
    reference = f"{local_registry}/{repository()}:bookworm"
    try:
        publisher.push_env("debian:12", reference)
    finally:
        publisher.close()

    with roost.create_workspace(reference) as ws:
        processes = ws.exec(["sh", "-c", AGENT_ON_BUNDLE], timeout=30)
        python = ws.exec(["python3", "-c", "import sys; print(sys.version_info[:2])"], timeout=30)

    assert "/usr/bin/python3 -I" in processes.stdout
    assert "/opt/roost/python" not in processes.stdout
    assert python.stdout.strip() == "(3, 11)"
    assert roost.inspect_env(reference).interpreter == "/usr/bin/python3"


def test_a_tag_is_pinned_to_its_digest_until_pulled_again(roost: Roost, local_registry: str, tmp_path: Path) -> None:
    repo = repository()
    reference = f"{local_registry}/{repo}:moving"
    first_tree = busybox_tree(tmp_path)
    (first_tree / "etc" / "release").write_text("first\n")
    first = push_tree(local_registry, first_tree, tmp_path, repository=repo, tag="moving")
    old = roost.create_workspace(reference)

    second_tree = busybox_tree(tmp_path)
    (second_tree / "etc" / "release").write_text("second\n")
    second = push_tree(local_registry, second_tree, tmp_path, repository=repo, tag="moving")
    assert second != first

    again = roost.create_workspace(reference)  # the name stays pinned: no registry request
    assert again.info().image == old.info().image == first.replace(":", "-")
    assert roost.pull_env(reference).digest == second
    newer = roost.create_workspace(reference)

    assert newer.exec(["cat", "/etc/release"], timeout=30).stdout == "second\n"
    assert old.exec(["cat", "/etc/release"], timeout=30).stdout == "first\n"
    assert old.info().image == first.replace(":", "-")


def test_a_cached_digest_needs_no_registry_and_no_blob(roost: Roost, local_registry: str, tmp_path: Path) -> None:
    repo = repository()
    digest = push_tree(local_registry, busybox_tree(tmp_path), tmp_path, repository=repo, tag="1")
    roost.create_workspace(f"{local_registry}/{repo}@{digest}").delete(force=True)
    shutil.rmtree(roost.home / "images" / "blobs")  # nothing left to read

    elsewhere = f"127.0.0.1:{closed_port()}/{repo}@{digest}"  # nobody listens there
    with roost.create_workspace(elsewhere) as ws:
        assert ws.exec(["true"], timeout=30).exit_code == 0
    assert not (roost.home / "images" / "blobs").exists()


def test_a_corrupted_layer_is_digest_mismatch_and_nothing_is_cached(
    roost: Roost, local_registry: str, local_registry_storage: Path, tmp_path: Path
) -> None:
    repo = repository()
    push_tree(local_registry, busybox_tree(tmp_path), tmp_path, repository=repo, tag="1")
    with RegistryClient(local_registry) as client:
        (layer,) = client.resolve(repo, "1").layers
    stored = blob_data_path(local_registry_storage, layer.digest)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    with pytest.raises(ImageError) as caught:
        roost.create_workspace(f"{local_registry}/{repo}:1")

    assert caught.value.code == "digest_mismatch"
    images = roost.home / "images"
    assert os.listdir(images / "rootfs") == [] and os.listdir(images / "envs") == []
    assert not (roost.home / "workspaces").exists() or os.listdir(roost.home / "workspaces") == []


def test_an_image_for_another_machine_is_image_unsupported(roost: Roost, local_registry: str, tmp_path: Path) -> None:
    repo = repository()
    push_tree(local_registry, busybox_tree(tmp_path), tmp_path, repository=repo, tag="arm", architecture="arm64")

    with pytest.raises(ImageError) as caught:
        roost.create_workspace(f"{local_registry}/{repo}:arm")

    assert caught.value.code == "image_unsupported"
    assert "arm64" in caught.value.message and caught.value.hint
    assert os.listdir(roost.home / "images" / "rootfs") == []


def test_prune_forgets_pulled_images_no_workspace_uses(roost: Roost, local_registry: str, tmp_path: Path) -> None:
    repo = repository()
    kept_digest = push_tree(local_registry, busybox_tree(tmp_path), tmp_path, repository=repo, tag="kept")
    gone_tree = busybox_tree(tmp_path)
    (gone_tree / "etc" / "gone").write_text("x")
    push_tree(local_registry, gone_tree, tmp_path, repository=repo, tag="gone")
    kept = roost.create_workspace(f"{local_registry}/{repo}:kept")
    roost.create_workspace(f"{local_registry}/{repo}:gone").delete(force=True)

    result = roost.prune_envs()

    assert kept_digest.replace(":", "-") in result.in_use and len(result.removed) == 1
    assert [env.name for env in roost.envs() if env.source == "image"] == [f"{local_registry}/{repo}:kept"]
    assert kept.exec(["true"], timeout=30).exit_code == 0
