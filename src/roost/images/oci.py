"""An OCI distribution client: resolve, pull and push single-platform images, verifying every digest.

Speaks the registry HTTP API v2 (manifests, blobs, monolithic blob uploads)
with Docker Hub's anonymous bearer-token flow. Blobs land in a
content-addressed directory (`<blob_dir>/sha256/<hex>`) only after their
sha256 matched; a download streams into a temp file that is removed on any
failure, so a partial blob never carries a final name. Every httpx failure
is translated here, once, into `ImageError` with a stable code (see `_HINTS`).

Imports: roost.errors, roost.images.layers (the `Digests` value), httpx2
(the HTTP client the mcp SDK already brings) and the standard library.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urljoin

import httpx2 as httpx

from roost.errors import ImageError, InvalidArgument
from roost.images.layers import Digests

__all__ = [
    "MEDIA_OCI_CONFIG",
    "MEDIA_OCI_INDEX",
    "MEDIA_OCI_LAYER_GZIP",
    "MEDIA_OCI_MANIFEST",
    "Descriptor",
    "ImageReference",
    "ManifestRef",
    "ProgressFn",
    "PulledImage",
    "RegistryClient",
    "blob_path",
    "parse_reference",
]

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_INDEX_TYPES = (MEDIA_OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")
_MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
_LAYER_TYPES = (
    MEDIA_OCI_LAYER_GZIP,
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)
_ACCEPT = ", ".join((*_MANIFEST_TYPES, *_INDEX_TYPES))
_PLATFORM = ("linux", "amd64")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
CHUNK_BYTES = 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

_HINTS = {
    "registry_unreachable": "check the registry address and the network (a local registry must be running)",
    "registry_error": "retry later; if it persists, the registry may not support this request",
    "registry_auth_failed": "roost talks to registries anonymously; use one that allows anonymous pull (and push)",
    "image_not_found": "check the repository and tag (private images are not supported)",
    "platform_not_found": "roost runs linux/amd64 images; pick a tag published for that platform",
    "digest_mismatch": "the registry served bytes that do not match their digest; nothing was kept, do not trust it",
    "invalid_manifest": "the registry served a manifest roost cannot read; check the reference",
    "unsupported_manifest": "roost reads OCI and Docker v2 image manifests and indexes",
    "unsupported_layer": "roost unpacks tar and gzip'd tar layers only",
    "unsupported_digest": "only sha256 digests are supported",
    "blob_write_failed": "check free space and permissions where the env cache lives",
}

ProgressFn = Callable[[str, int, int], None]
"""Called as (blob digest, bytes done, bytes total) while a blob downloads."""


def _error(code: str, message: str) -> ImageError:
    return ImageError(message, code=code, hint=_HINTS[code])


class ImageReference(NamedTuple):
    registry: str
    repository: str
    reference: str


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class ManifestRef:
    """A resolved single-platform image manifest: its digest, parsed JSON, config, layers and raw bytes."""

    digest: str
    media_type: str
    manifest: dict[str, Any]
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class PulledImage:
    """An image whose manifest, config and layers all sit verified in `blob_dir`."""

    registry: str
    repository: str
    reference: str
    manifest: ManifestRef
    blob_dir: Path

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def config_path(self) -> Path:
        return blob_path(self.blob_dir, self.manifest.config.digest)

    @property
    def layer_paths(self) -> tuple[Path, ...]:
        """Layer blobs, lowest first: the order to apply them in."""
        return tuple(blob_path(self.blob_dir, layer.digest) for layer in self.manifest.layers)


def _bad_reference(text: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid image reference {text!r}: {why}",
        code="invalid_image_reference",
        hint="write it as [registry/]repository[:tag] or [registry/]repository@sha256:<hex>",
    )


def parse_reference(text: str) -> ImageReference:
    """Split `host[:port]/repo/path:tag` or `...@sha256:<hex>` into (registry, repository, reference).

    No registry part means Docker Hub (`docker.io`, one-part names under
    `library/`); a missing tag means `latest`.

    Raises:
        InvalidArgument: invalid_image_reference.
    """
    name, reference = text, ""
    if "@" in name:
        name, reference = name.split("@", 1)
        if not _DIGEST_RE.fullmatch(reference):
            raise _bad_reference(text, "the digest must be sha256:<64 lowercase hex>")
    elif ":" in name.rsplit("/", 1)[-1]:
        name, reference = name.rsplit(":", 1)
        if not _TAG_RE.fullmatch(reference):
            raise _bad_reference(text, f"bad tag {reference!r}")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = "docker.io", name
    if registry in _HUB_ALIASES:
        registry = "docker.io"
        repository = repository if "/" in repository else f"library/{repository}"
    if not all(_COMPONENT_RE.fullmatch(part) for part in repository.split("/")):
        raise _bad_reference(text, "repository parts are lowercase letters and digits with . _ - between them")
    return ImageReference(registry, repository, reference or "latest")


def blob_path(blob_dir: Path, digest: str) -> Path:
    """Where a verified blob lives in a content-addressed directory.

    Raises:
        ImageError: unsupported_digest for anything but `sha256:<64 hex>`.
    """
    if not _DIGEST_RE.fullmatch(digest):
        raise _error("unsupported_digest", f"unsupported digest {digest!r}")
    return blob_dir / "sha256" / digest.split(":", 1)[1]


def _is_loopback(host_port: str) -> bool:
    if host_port.startswith("["):
        host = host_port[1 : host_port.find("]")]
    else:
        host = host_port if host_port.count(":") > 1 else host_port.split(":", 1)[0]
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str) or not isinstance(raw.get("size"), int):
        raise _error("invalid_manifest", f"{where} is not a valid descriptor")
    blob_path(Path(), raw["digest"])  # validates the digest before it can name a file
    return Descriptor(str(raw.get("mediaType", "")), raw["digest"], raw["size"])


def _registry_detail(response: httpx.Response) -> str:
    """The registry's own error codes, when its body carries them."""
    try:
        errors = response.json().get("errors", [])
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors)
    except (ValueError, AttributeError, TypeError, httpx.ResponseNotRead):
        return ""


class RegistryClient:
    """A client for one registry (`host[:port]`; `docker.io` means Docker Hub).

    http is used only for loopback hosts, or anywhere when `insecure=True`;
    `insecure=False` forces https even on loopback. `transport` replaces the
    network (tests).
    """

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool | None = None,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.registry = registry
        host_port = "registry-1.docker.io" if registry in _HUB_ALIASES else registry
        plain = insecure if insecure is not None else _is_loopback(host_port)
        self.base_url = f"{'http' if plain else 'https'}://{host_port}"
        self._tokens: dict[str, str] = {}
        self._client = httpx.Client(timeout=timeout, follow_redirects=True, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the one place httpx is called and its failures translated -------------------------------

    def _transport_error(self, exc: httpx.TransportError) -> ImageError:
        if isinstance(exc, httpx.TimeoutException | httpx.NetworkError):
            return _error(
                "registry_unreachable", f"registry {self.registry} is unreachable: {exc or type(exc).__name__}"
            )
        return _error("registry_error", f"talking to registry {self.registry} failed: {exc or type(exc).__name__}")

    def _fail(self, response: httpx.Response, what: str) -> ImageError:
        detail = _registry_detail(response)
        code = "registry_auth_failed" if response.status_code in (401, 403) else "registry_error"
        return _error(
            code, f"registry {self.registry} answered {response.status_code} to {what}{': ' if detail else ''}{detail}"
        )

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        body: Callable[[], bytes | Iterator[bytes]] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request, fetching a bearer token for `scope` once if the registry asks for one.

        `body` is a factory so the request can be sent again after the token
        dance. A streamed response must be closed by the caller.

        Raises:
            ImageError: registry_unreachable, registry_auth_failed, registry_error.
        """
        for attempt in (1, 2):
            sent = dict(headers or {})
            if scope in self._tokens:
                sent["Authorization"] = f"Bearer {self._tokens[scope]}"
            try:
                content = body() if body else None
                request = self._client.build_request(method, urljoin(self.base_url, url), headers=sent, content=content)
                response = self._client.send(request, stream=True)
                if response.status_code == 401 and attempt == 1:
                    response.close()
                    self._tokens[scope] = self._fetch_token(response.headers.get("www-authenticate", ""), scope)
                    continue
                if not stream:
                    response.read()
            except httpx.TransportError as exc:
                raise self._transport_error(exc) from None
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_token(self, challenge: str, scope: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM_RE.findall(params_text))
        if scheme.lower() != "bearer" or not params.get("realm", "").startswith(("http://", "https://")):
            raise _error(
                "registry_auth_failed", f"registry {self.registry} wants credentials ({scheme or 'no challenge'})"
            )
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        try:
            response = self._client.get(params["realm"], params=query)
            answer = response.json() if response.status_code == 200 else {}
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        except ValueError:
            answer = {}
        token = (answer.get("token") or answer.get("access_token")) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise _error(
                "registry_auth_failed",
                f"the token service of {self.registry} answered {response.status_code} without a token",
            )
        return token

    # -- resolve and pull ----------------------------------------------------------------------

    def _get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        scope = f"repository:{repository}:pull"
        response = self._send("GET", f"/v2/{repository}/manifests/{reference}", scope, headers={"Accept": _ACCEPT})
        if response.status_code in (401, 404):  # Docker Hub answers 401 for repositories that do not exist
            raise _error("image_not_found", f"image {self.registry}/{repository}:{reference} not found")
        if response.status_code != 200:
            raise self._fail(response, f"GET manifest {repository}:{reference}")
        raw = response.content
        if len(raw) > MAX_MANIFEST_BYTES:
            raise _error("invalid_manifest", f"manifest of {repository}:{reference} is too large ({len(raw)} bytes)")
        digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
        if reference.startswith("sha256:") and digest != reference:
            raise _error("digest_mismatch", f"manifest {repository}@{reference} arrived with digest {digest}")
        return raw, response.headers.get("content-type", "").split(";")[0].strip()

    def resolve(self, repository: str, reference: str) -> ManifestRef:
        """Resolve a tag or digest to the linux/amd64 image manifest, following an index or manifest list.

        Raises:
            ImageError: image_not_found, platform_not_found, unsupported_manifest,
                invalid_manifest, digest_mismatch, or a transport error code.
        """
        for _hop in range(3):
            raw, content_type = self._get_manifest(repository, reference)
            try:
                manifest = json.loads(raw)
            except ValueError:
                manifest = None
            if not isinstance(manifest, dict):
                raise _error("invalid_manifest", f"manifest of {repository}:{reference} is not a JSON object")
            media_type = str(manifest.get("mediaType") or content_type)
            if media_type in _INDEX_TYPES:
                reference = self._select_platform(manifest, f"{repository}:{reference}")
                continue
            if media_type not in _MANIFEST_TYPES:
                raise _error("unsupported_manifest", f"{repository}:{reference} has a manifest of type {media_type!r}")
            layers = manifest.get("layers")
            if manifest.get("schemaVersion") != 2 or not isinstance(layers, list):
                raise _error("invalid_manifest", f"manifest of {repository}:{reference} is not schema 2")
            return ManifestRef(
                digest=f"sha256:{hashlib.sha256(raw).hexdigest()}",
                media_type=media_type,
                manifest=manifest,
                config=_descriptor(manifest.get("config"), "manifest config"),
                layers=tuple(_descriptor(layer, f"layer {i}") for i, layer in enumerate(layers)),
                raw=raw,
            )
        raise _error("invalid_manifest", f"{repository}:{reference}: indexes nest too deep")

    def _select_platform(self, index: dict[str, Any], name: str) -> str:
        seen = []
        for entry in index.get("manifests") or []:
            platform = entry.get("platform") if isinstance(entry, dict) else None
            platform = platform if isinstance(platform, dict) else {}
            seen.append(f"{platform.get('os', '?')}/{platform.get('architecture', '?')}")
            if (platform.get("os"), platform.get("architecture")) == _PLATFORM:
                return _descriptor(entry, f"{name} index entry").digest
        raise _error("platform_not_found", f"{name} has no linux/amd64 image (it has: {', '.join(seen) or 'none'})")

    def pull(self, repository: str, reference: str, blob_dir: Path, progress: ProgressFn | None = None) -> PulledImage:
        """Resolve `reference` and bring its manifest, config and layers into `blob_dir`, verified.

        Blobs already present are re-hashed and kept when they match.

        Raises:
            ImageError: digest_mismatch (the temp file is removed), unsupported_layer,
                blob_write_failed, or any code `resolve` raises.
        """
        ref = self.resolve(repository, reference)
        for layer in ref.layers:
            if layer.media_type not in _LAYER_TYPES:
                raise _error("unsupported_layer", f"{repository}:{reference} has a layer of type {layer.media_type!r}")
        _store_stream(blob_path(blob_dir, ref.digest), Descriptor("", ref.digest, len(ref.raw)), iter((ref.raw,)), None)
        for blob in (ref.config, *ref.layers):
            self._fetch_blob(repository, blob, blob_dir, progress)
        return PulledImage(self.registry, repository, reference, ref, blob_dir)

    def _fetch_blob(self, repository: str, blob: Descriptor, blob_dir: Path, progress: ProgressFn | None) -> None:
        final = blob_path(blob_dir, blob.digest)
        try:
            if final.exists():
                if _file_digest(final) == (blob.digest, blob.size):
                    if progress:
                        progress(blob.digest, blob.size, blob.size)
                    return
                final.unlink()  # a damaged cached copy is fetched again
        except OSError as exc:
            raise _error(
                "blob_write_failed", f"checking cached blob {blob.digest} failed: {exc.strerror or exc}"
            ) from None
        response = self._send(
            "GET", f"/v2/{repository}/blobs/{blob.digest}", f"repository:{repository}:pull", stream=True
        )
        try:
            if response.status_code != 200:
                response.read()
                raise self._fail(response, f"GET blob {blob.digest}")
            _store_stream(final, blob, response.iter_bytes(CHUNK_BYTES), progress)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        finally:
            response.close()

    # -- push ----------------------------------------------------------------------------------

    def push(self, repository: str, tag: str, layer: Path, layer_digests: Digests, config: dict[str, Any]) -> str:
        """Publish a one-layer image as `repository:tag`; return its manifest digest (see `push_layers`)."""
        return self.push_layers(repository, tag, [(layer, layer_digests)], config)

    def push_layers(
        self, repository: str, tag: str, layers: Sequence[tuple[Path, Digests]], config: dict[str, Any]
    ) -> str:
        """Publish an image of `layers` (bottom first) as `repository:tag`; return its manifest digest.

        `config` is the OCI image config; its `rootfs` is set to these layers and
        `os`/`architecture` default to linux/amd64. Blobs the registry already
        has are not uploaded again.

        Raises:
            InvalidArgument: invalid_image_reference for a malformed tag.
            ImageError: registry_error, registry_auth_failed, digest_mismatch, or a transport error code.
        """
        if not _TAG_RE.fullmatch(tag):
            raise _bad_reference(f"{repository}:{tag}", f"bad tag {tag!r}")
        scope = f"repository:{repository}:pull,push"
        config = {"architecture": _PLATFORM[1], "os": _PLATFORM[0], **config}
        config["rootfs"] = {"type": "layers", "diff_ids": [digests.diff_id for _path, digests in layers]}
        config_raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = f"sha256:{hashlib.sha256(config_raw).hexdigest()}"
        self._ensure_blob(repository, scope, config_digest, len(config_raw), lambda: config_raw)
        for path, digests in layers:
            self._ensure_blob(repository, scope, digests.digest, digests.size, functools.partial(_read_chunks, path))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": len(config_raw)},
            "layers": [
                {"mediaType": MEDIA_OCI_LAYER_GZIP, "digest": digests.digest, "size": digests.size}
                for _path, digests in layers
            ],
        }
        raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
        headers = {"Content-Type": MEDIA_OCI_MANIFEST}
        response = self._send("PUT", f"/v2/{repository}/manifests/{tag}", scope, headers=headers, body=lambda: raw)
        if response.status_code not in (200, 201):
            raise self._fail(response, f"PUT manifest {repository}:{tag}")
        stored = response.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise _error(
                "digest_mismatch", f"registry stored manifest {repository}:{tag} as {stored}, expected {digest}"
            )
        return digest

    def _ensure_blob(
        self, repository: str, scope: str, digest: str, size: int, body: Callable[[], bytes | Iterator[bytes]]
    ) -> None:
        if self._send("HEAD", f"/v2/{repository}/blobs/{digest}", scope).status_code == 200:
            return
        start = self._send("POST", f"/v2/{repository}/blobs/uploads/", scope)
        location = start.headers.get("location")
        if start.status_code != 202 or not location:
            raise self._fail(start, f"POST blob upload to {repository}")
        url = urljoin(self.base_url, location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        done = self._send("PUT", url, scope, headers=headers, body=body)
        if done.status_code == 400 and "DIGEST_INVALID" in _registry_detail(done):
            raise _error("digest_mismatch", f"registry computed another digest for blob {digest}")
        if done.status_code != 201:
            raise self._fail(done, f"PUT blob {digest}")


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            yield chunk


def _file_digest(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    for chunk in _read_chunks(path):
        sha.update(chunk)
        size += len(chunk)
    return f"sha256:{sha.hexdigest()}", size


def _store_stream(final: Path, blob: Descriptor, chunks: Iterator[bytes], progress: ProgressFn | None) -> None:
    """Hash `chunks` into a temp file beside `final`; rename it there only when digest and size match.

    Raises:
        ImageError: digest_mismatch, blob_write_failed.
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name[:16]}.", suffix=".partial", dir=final.parent)
    except OSError as exc:
        raise _error("blob_write_failed", f"storing blob {blob.digest} failed: {exc.strerror or exc}") from None
    try:
        sha, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > blob.size:  # stop early: a registry serving too much must not fill the disk
                    break
                sha.update(chunk)
                out.write(chunk)
                if progress:
                    progress(blob.digest, size, blob.size)
            out.flush()
            os.fsync(out.fileno())
        if size != blob.size or f"sha256:{sha.hexdigest()}" != blob.digest:
            got = f"{size} bytes" if size <= blob.size else f"more than {blob.size} bytes"
            raise _error("digest_mismatch", f"blob {blob.digest} arrived as {got} with another digest")
        os.replace(tmp, final)
    except OSError as exc:
        raise _error("blob_write_failed", f"storing blob {blob.digest} failed: {exc.strerror or exc}") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
