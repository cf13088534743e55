"""The OCI client against a real docker-registry (push, pull, verify) and a tiny in-test registry (auth, indexes)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from registry import blob_data_path

from roost.errors import ImageError, InvalidArgument
from roost.images.layers import Digests, apply_layer, layer_from_directory
from roost.images.oci import (
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    ImageReference,
    RegistryClient,
    blob_path,
    parse_reference,
)

MTIME = 1_700_000_000


def make_rootfs(base: Path, marker: str = "") -> Path:
    """A small synthetic rootfs: files, an executable, a symlink, a hardlink, an empty dir."""
    (base / "usr/bin").mkdir(parents=True)
    (base / "etc").mkdir()
    (base / "workspace").mkdir()
    (base / "usr/bin/hello").write_text(f"#!/bin/sh\necho hello {marker}\n")
    (base / "usr/bin/hello").chmod(0o755)
    (base / "etc/os-release").write_text(f"ID=roost\nMARKER={marker}\n")
    (base / "etc/motd").write_bytes(os.urandom(64 * 1024))  # incompressible: a layer of some size
    (base / "bin").symlink_to("usr/bin")
    os.link(base / "usr/bin/hello", base / "usr/bin/hi")
    for path in [*base.rglob("*"), base]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    return base


def tree(base: Path) -> dict[str, tuple[str, int, int, str]]:
    out = {}
    for path in sorted(base.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = ""
        kind = "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "file"
        mode = 0 if kind == "link" else stat.S_IMODE(st.st_mode)
        out[path.relative_to(base).as_posix()] = (kind, mode, int(st.st_mtime), content)
    return out


def build_layer(tmp_path: Path, marker: str = "") -> tuple[Path, Path, Digests]:
    src = make_rootfs(tmp_path / f"src{marker}", marker)
    out = tmp_path / f"layer{marker}.tar.gz"
    return src, out, layer_from_directory(src, out)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProgressLog(list[tuple[str, int, int]]):
    """Progress callbacks as (digest, done, total) tuples."""

    def record(self, digest: str, done: int, total: int) -> None:
        self.append((digest, done, total))


# -- against the real docker-registry ------------------------------------------------------------


@pytest.mark.integration
def test_push_then_pull_by_tag_and_by_digest_gives_back_the_same_tree(local_registry: str, tmp_path: Path) -> None:
    src, layer, digests = build_layer(tmp_path)
    with RegistryClient(local_registry) as client:
        digest = client.push("roost/test", "1", layer, digests, {"config": {"Env": ["PATH=/usr/bin:/bin"]}})
        assert digest == client.push("roost/test", "1", layer, digests, {"config": {"Env": ["PATH=/usr/bin:/bin"]}})
        for reference in ("1", digest):
            seen = ProgressLog()
            pulled = client.pull("roost/test", reference, tmp_path / f"blobs-{reference[:6]}", seen.record)
            assert pulled.digest == digest
            assert [d.digest for d in pulled.manifest.layers] == [digests.digest]
            config = json.loads(pulled.config_path.read_bytes())
            assert config["rootfs"] == {"type": "layers", "diff_ids": [digests.diff_id]}
            assert (config["os"], config["architecture"]) == ("linux", "amd64")
            assert blob_path(pulled.blob_dir, digest).read_bytes() == pulled.manifest.raw
            assert seen[-1] == (digests.digest, digests.size, digests.size)
            dest = tmp_path / f"rootfs-{reference[:6]}"
            dest.mkdir()
            for path in pulled.layer_paths:
                apply_layer(path, dest)
            assert tree(dest) == tree(src)


@pytest.mark.integration
def test_pull_keeps_blobs_already_present_and_verified(local_registry: str, tmp_path: Path) -> None:
    _src, layer, digests = build_layer(tmp_path, "again")
    blobs = tmp_path / "blobs"
    with RegistryClient(local_registry) as client:
        client.push("roost/test", "again", layer, digests, {})
        first = client.pull("roost/test", "again", blobs)
        inode = first.layer_paths[0].stat().st_ino
        second = client.pull("roost/test", "again", blobs)
    assert second.layer_paths[0].stat().st_ino == inode


@pytest.mark.integration
def test_a_corrupted_blob_in_the_registry_is_refused_and_nothing_is_kept(
    local_registry: str, local_registry_storage: Path, tmp_path: Path
) -> None:
    _src, layer, digests = build_layer(tmp_path, uuid.uuid4().hex)
    with RegistryClient(local_registry) as client:
        client.push("roost/corrupt", "1", layer, digests, {})
        stored = blob_data_path(local_registry_storage, digests.digest)
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
        blobs = tmp_path / "empty-blobs"
        with pytest.raises(ImageError) as caught:
            client.pull("roost/corrupt", "1", blobs)
    assert caught.value.code == "digest_mismatch"
    assert caught.value.hint
    assert not blob_path(blobs, digests.digest).exists()
    assert not [p for p in blobs.rglob("*") if p.name.endswith(".partial")]


@pytest.mark.integration
@pytest.mark.parametrize(("repository", "reference"), [("roost/test", "no-such-tag"), ("roost/nothing", "1")])
def test_unknown_tag_or_repository_is_image_not_found(local_registry: str, repository: str, reference: str) -> None:
    with RegistryClient(local_registry) as client, pytest.raises(ImageError) as caught:
        client.resolve(repository, reference)
    assert caught.value.code == "image_not_found"


def test_a_registry_nobody_listens_on_is_registry_unreachable(tmp_path: Path) -> None:
    with RegistryClient(f"127.0.0.1:{closed_port()}", timeout=5) as client, pytest.raises(ImageError) as caught:
        client.pull("roost/test", "1", tmp_path / "blobs")
    assert caught.value.code == "registry_unreachable"
    assert "unreachable" in caught.value.message and caught.value.hint


# -- against a tiny in-test registry: token auth and manifest lists ------------------------------

TOKEN = "anon-token-123"
MAX_REQUESTS = 50


class FakeRegistry:
    """Serves fixed manifests and blobs for `roost/fake` behind Docker Hub style anonymous bearer auth."""

    def __init__(self, token_field: str = "token", challenge: str | None = None) -> None:
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.blobs: dict[str, bytes] = {}
        self.token_field = token_field
        self.challenge = challenge
        self.log: list[tuple[str, str, str | None]] = []
        self.token_queries: list[dict[str, list[str]]] = []
        self.server = HTTPServer(("127.0.0.1", 0), self._handler())
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def add_blob(self, data: bytes) -> dict[str, object]:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def add_manifest(self, body: dict[str, object], *tags: str) -> str:
        raw = json.dumps(body).encode()
        digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
        for name in (digest, *tags):
            self.manifests[name] = (str(body["mediaType"]), raw)
        return digest

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization")
                fake.log.append((self.command, url.path, auth))
                if len(fake.log) > MAX_REQUESTS:
                    return self._send(503)
                if url.path == "/token":
                    fake.token_queries.append(parse_qs(url.query))
                    return self._send(200, json.dumps({fake.token_field: TOKEN}).encode())
                if auth != f"Bearer {TOKEN}":
                    realm = f"http://{fake.address}/token"
                    challenge = fake.challenge or (
                        f'Bearer realm="{realm}",service="fake.registry",scope="repository:roost/fake:pull"'
                    )
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
                kind, _, name = url.path.removeprefix("/v2/roost/fake/").partition("/")
                if kind == "manifests" and name in fake.manifests:
                    media_type, raw = fake.manifests[name]
                    return self._send(200, raw, {"Content-Type": media_type})
                if kind == "blobs" and name in fake.blobs:
                    return self._send(200, fake.blobs[name])
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

        return Handler


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    fake = FakeRegistry()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    fake.thread.join(timeout=5)


def publish_multi_platform(fake: FakeRegistry, tmp_path: Path) -> tuple[str, Digests, Path]:
    """An index with arm64, amd64 and an attestation entry; returns the amd64 manifest digest."""
    src, layer, digests = build_layer(tmp_path)
    layer_desc = fake.add_blob(layer.read_bytes())
    manifests = {}
    for arch in ("arm64", "amd64"):
        config = fake.add_blob(json.dumps({"architecture": arch, "os": "linux"}).encode())
        body = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_desc}],
        }
        manifests[arch] = fake.add_manifest(body)
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_OCI_MANIFEST,
                "digest": manifests["arm64"],
                "size": 1,
                "platform": {"os": "linux", "architecture": "arm64"},
            },
            {
                "mediaType": MEDIA_OCI_MANIFEST,
                "digest": manifests["amd64"],
                "size": 1,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": MEDIA_OCI_MANIFEST,
                "digest": manifests["arm64"],
                "size": 1,
                "platform": {"os": "unknown", "architecture": "unknown"},
            },
        ],
    }
    fake.add_manifest(index, "multi")
    return manifests["amd64"], digests, src


def test_anonymous_token_is_fetched_once_and_sent_as_bearer(fake_registry: FakeRegistry, tmp_path: Path) -> None:
    amd64, _digests, src = publish_multi_platform(fake_registry, tmp_path)
    with RegistryClient(fake_registry.address) as client:
        pulled = client.pull("roost/fake", "multi", tmp_path / "blobs")
    assert pulled.digest == amd64
    assert fake_registry.token_queries == [{"service": ["fake.registry"], "scope": ["repository:roost/fake:pull"]}]
    v2 = [entry for entry in fake_registry.log if entry[1].startswith("/v2/")]
    assert v2[0][2] is None  # the first try goes without credentials and gets the challenge
    assert all(auth == f"Bearer {TOKEN}" for _method, _path, auth in v2[1:])
    # challenged index, index again with the token, amd64 manifest, config, layer: the token is reused
    assert [path.rsplit("/", 2)[-2] for _m, path, _a in v2] == ["manifests"] * 3 + ["blobs"] * 2
    dest = tmp_path / "rootfs"
    dest.mkdir()
    apply_layer(pulled.layer_paths[0], dest)
    assert tree(dest) == tree(src)
    assert json.loads(pulled.config_path.read_bytes())["architecture"] == "amd64"


def test_access_token_field_is_accepted_too(tmp_path: Path) -> None:
    fake = FakeRegistry(token_field="access_token")
    fake.thread.start()
    try:
        amd64, _digests, _src = publish_multi_platform(fake, tmp_path)
        with RegistryClient(fake.address) as client:
            assert client.resolve("roost/fake", "multi").digest == amd64
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_an_index_without_linux_amd64_is_platform_not_found(fake_registry: FakeRegistry) -> None:
    entry = {"mediaType": MEDIA_OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1}
    fake_registry.add_manifest(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [{**entry, "platform": {"os": "linux", "architecture": "arm64"}}],
        },
        "armonly",
    )
    with RegistryClient(fake_registry.address) as client, pytest.raises(ImageError) as caught:
        client.resolve("roost/fake", "armonly")
    assert caught.value.code == "platform_not_found"
    assert "linux/arm64" in caught.value.message


def test_a_manifest_pulled_by_digest_must_hash_to_that_digest(fake_registry: FakeRegistry, tmp_path: Path) -> None:
    amd64, _digests, _src = publish_multi_platform(fake_registry, tmp_path)
    forged = "sha256:" + "b" * 64
    fake_registry.manifests[forged] = fake_registry.manifests[amd64]
    with RegistryClient(fake_registry.address) as client, pytest.raises(ImageError) as caught:
        client.pull("roost/fake", forged, tmp_path / "blobs")
    assert caught.value.code == "digest_mismatch"
    assert not (tmp_path / "blobs").exists() or not list((tmp_path / "blobs").rglob("*.partial"))


def test_a_registry_asking_for_basic_credentials_is_registry_auth_failed(tmp_path: Path) -> None:
    fake = FakeRegistry(challenge='Basic realm="private"')
    fake.thread.start()
    try:
        with RegistryClient(fake.address) as client, pytest.raises(ImageError) as caught:
            client.resolve("roost/fake", "multi")
        assert caught.value.code == "registry_auth_failed"
    finally:
        fake.server.shutdown()
        fake.server.server_close()


# -- references and addresses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/roost/debian:12", ("127.0.0.1:5000", "roost/debian", "12")),
        ("localhost/roost/debian", ("localhost", "roost/debian", "latest")),
        ("127.0.0.1:5000/roost/debian@sha256:" + "c" * 64, ("127.0.0.1:5000", "roost/debian", "sha256:" + "c" * 64)),
        ("docker.io/library/debian:12", ("docker.io", "library/debian", "12")),
        ("debian:12", ("docker.io", "library/debian", "12")),
        ("index.docker.io/debian", ("docker.io", "library/debian", "latest")),
        ("ghcr.io/some-org/tool_x:v1.2.3", ("ghcr.io", "some-org/tool_x", "v1.2.3")),
    ],
)
def test_parse_reference(text: str, expected: tuple[str, str, str]) -> None:
    assert parse_reference(text) == ImageReference(*expected)


@pytest.mark.parametrize("text", ["Debian:12", "debian@sha256:short", "debian:-bad", "host:5000/", "a//b"])
def test_malformed_references_are_invalid_arguments(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_reference(text)
    assert caught.value.code == "invalid_image_reference"


@pytest.mark.parametrize(
    ("registry", "insecure", "base_url"),
    [
        ("docker.io", None, "https://registry-1.docker.io"),
        ("127.0.0.1:5000", None, "http://127.0.0.1:5000"),
        ("localhost:5000", None, "http://localhost:5000"),
        ("[::1]:5000", None, "http://[::1]:5000"),
        ("registry.example:5000", None, "https://registry.example:5000"),
        ("registry.example:5000", True, "http://registry.example:5000"),
        ("127.0.0.1:5000", False, "https://127.0.0.1:5000"),
    ],
)
def test_http_only_for_loopback_unless_insecure(registry: str, insecure: bool | None, base_url: str) -> None:
    with RegistryClient(registry, insecure=insecure) as client:
        assert client.base_url == base_url
