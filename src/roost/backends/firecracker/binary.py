"""Finding the firecracker binary, asking its version, and installing an official release.

Lookup order: `$ROOST_FIRECRACKER`, then `<home>/runtime/firecracker` (where
`roost runtime install` puts it), then `$PATH`. The installer downloads the
release tarball for this host's architecture from Firecracker's GitHub
releases, checks it against the release's published `.sha256.txt`, checks every
extracted binary against the tarball's own `SHA256SUMS` when it has one, and
renames the binaries into place only after that: a partial or unverified file
never carries the final name.

Imports: errors, config, httpx2 (lazily, only to download) and the standard library.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from roost.config import default_home
from roost.errors import BackendError, InvalidArgument, operator_remedy

__all__ = [
    "DEFAULT_VERSION",
    "FIRECRACKER_ENV",
    "InstalledRuntime",
    "find_firecracker",
    "firecracker_version",
    "guest_arch",
    "install_runtime",
    "release_arch",
    "require_supported_version",
    "runtime_dir",
]

FIRECRACKER_ENV = "ROOST_FIRECRACKER"
DEFAULT_VERSION = "1.12.1"
# The first release that describes virtio devices to an x86_64 guest in ACPI tables; the guest
# kernel (Debian's cloud kernel, no VIRTIO_MMIO_CMDLINE_DEVICES) finds its disk only that way.
MINIMUM_VERSION = (1, 8, 0)
# The guest image pipeline builds an amd64 kernel and rootfs only.
GUEST_ARCHES = ("x86_64",)
RELEASES_URL = "https://github.com/firecracker-microvm/firecracker/releases/download"
DOWNLOAD_TIMEOUT = 60.0
_VERSION_RE = re.compile(r"^v?(\d+\.\d+\.\d+)$")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
_DOWNLOAD_HINT = "check access to github.com, or put a firecracker binary on PATH or in $ROOST_FIRECRACKER"


@dataclass(frozen=True)
class InstalledRuntime:
    """What `roost runtime install` put where."""

    version: str
    firecracker: str
    jailer: str | None
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "firecracker": self.firecracker, "jailer": self.jailer, "sha256": self.sha256}


def runtime_dir(home: Path | None = None) -> Path:
    """Where installed runtime binaries live: `<home>/runtime`."""
    return (home or default_home()) / "runtime"


def find_firecracker(home: Path | None = None) -> tuple[Path | None, str]:
    """The firecracker binary to use and where it was found, or None and why not."""
    explicit = os.environ.get(FIRECRACKER_ENV)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return Path(explicit), f"${FIRECRACKER_ENV}"
        return None, f"${FIRECRACKER_ENV}={explicit} is not an executable file"
    installed = runtime_dir(home) / "firecracker"
    if os.access(installed, os.X_OK):
        return installed, "roost runtime"
    found = shutil.which("firecracker")
    if found:
        return Path(found), "PATH"
    return None, "no firecracker binary (run `roost runtime install`, or set $ROOST_FIRECRACKER)"


@cache
def _version_of(path: str, mtime_ns: int) -> str:
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{path} does not run: {exc}", code="firecracker_broken") from None
    match = re.search(r"Firecracker v(\d+\.\d+\.\d+\S*)", result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        first = (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}").splitlines()[0]
        raise BackendError(
            f"{path} is not a working firecracker: {first}",
            code="firecracker_broken",
            remedy=operator_remedy("reinstall it", "runtime_install"),
        )
    return match.group(1)


def firecracker_version(binary: Path) -> str:
    """`1.12.1` for a binary that prints `Firecracker v1.12.1` (cached per file version).

    Raises:
        BackendError: firecracker_broken when it does not run or says something else.
    """
    try:
        mtime = binary.stat().st_mtime_ns
    except OSError as exc:
        raise BackendError(f"{binary}: {exc.strerror}", code="firecracker_broken") from None
    return _version_of(str(binary), mtime)


def release_arch(machine: str | None = None) -> str:
    """Firecracker's name for this host's architecture.

    Raises:
        BackendError: unsupported_arch.
    """
    raw = machine or platform.machine()
    arch = _ARCHES.get(raw.lower())
    if arch is None:
        raise BackendError(
            f"Firecracker publishes no release for {raw}",
            code="unsupported_arch",
            hint="Firecracker runs on x86_64 and aarch64 hosts",
        )
    return arch


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-")[0])[:3])


def require_supported_version(version: str, where: str) -> None:
    """Refuse a Firecracker older than `MINIMUM_VERSION` (`where`: the binary, for the message).

    Raises:
        BackendError: firecracker_too_old.
    """
    if _version_tuple(version) < MINIMUM_VERSION:
        floor = ".".join(map(str, MINIMUM_VERSION))
        raise BackendError(
            f"firecracker v{version} ({where}) is too old: roost's guests need v{floor} or newer, whose ACPI "
            'tables let the guest kernel find its virtio disk (an older one boots to "no root disk")',
            code="firecracker_too_old",
            remedy=operator_remedy(f"install v{DEFAULT_VERSION}", "runtime_install"),
        )


def guest_arch(machine: str | None = None) -> str:
    """This host's architecture when roost has a guest for it.

    Raises:
        BackendError: unsupported_arch (Firecracker may run here, but roost's guest kernel is amd64 only).
    """
    arch = release_arch(machine)
    if arch not in GUEST_ARCHES:
        raise BackendError(
            f"roost's guest image is built for {', '.join(GUEST_ARCHES)} only; this host is {arch}",
            code="unsupported_arch",
            hint="use the sandbox backend on this host",
        )
    return arch


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> None:
    import httpx2 as httpx

    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise BackendError(
                    f"downloading {url} failed: HTTP {response.status_code}",
                    code="runtime_download_failed",
                    hint="check the version (e.g. 1.12.1) and " + _DOWNLOAD_HINT,
                )
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise BackendError(
            f"downloading {url} failed: {exc or type(exc).__name__}",
            code="runtime_download_failed",
            hint=_DOWNLOAD_HINT,
        ) from None
    except OSError as exc:
        raise BackendError(
            f"cannot write the download to {dest.parent}: {exc.strerror}",
            code="runtime_download_failed",
            hint="check free space and permissions under $ROOST_HOME",
        ) from None


def _expected_sha256(checksum_file: Path, asset: str) -> str:
    # `sha256sum` output: "<hex>  <name>" (or "<hex> *<name>"); a bare hex line counts too.
    for line in checksum_file.read_text(errors="replace").splitlines():
        fields = line.split()
        if fields and _SHA256_RE.fullmatch(fields[0]) and (len(fields) == 1 or fields[-1].lstrip("*") == asset):
            return fields[0]
    raise BackendError(
        f"the release's checksum file names no sha256 for {asset}",
        code="runtime_checksum_mismatch",
        hint=_DOWNLOAD_HINT,
    )


def _member(archive: tarfile.TarFile, name: str) -> tarfile.TarInfo | None:
    """The regular file called `name` anywhere in the release (it nests under release-vX-arch/)."""
    for info in archive.getmembers():
        if info.isfile() and os.path.basename(info.name) == name:
            return info
    return None


def _extract_verified(archive: tarfile.TarFile, info: tarfile.TarInfo, dest: Path, sums: dict[str, str]) -> str:
    source = archive.extractfile(info)
    if source is None:
        raise BackendError(f"cannot read {info.name} from the release", code="runtime_download_failed")
    with source, open(dest, "wb") as out:
        shutil.copyfileobj(source, out)
    digest = _sha256(dest)
    expected = sums.get(os.path.basename(info.name))
    if expected is not None and expected != digest:
        raise BackendError(
            f"{os.path.basename(info.name)} in the release has sha256 {digest}, its SHA256SUMS says {expected}",
            code="runtime_checksum_mismatch",
            hint="nothing was installed; retry, and do not use that download",
        )
    os.chmod(dest, 0o755)
    return digest


def _inner_sums(archive: tarfile.TarFile) -> dict[str, str]:
    for info in archive.getmembers():
        if info.isfile() and os.path.basename(info.name) == "SHA256SUMS":
            raw = archive.extractfile(info)
            text = raw.read().decode(errors="replace") if raw is not None else ""
            rows = (line.split() for line in text.splitlines())
            return {fields[-1].lstrip("*"): fields[0] for fields in rows if len(fields) >= 2}
    return {}


def _download_verified(release_url: str, asset: str, work: Path) -> None:
    """`asset` of the release into `work`, checked against the sha256 the release publishes.

    Raises:
        BackendError: runtime_download_failed, runtime_checksum_mismatch.
    """
    _download(f"{release_url}/{asset}.sha256.txt", work / "sha256.txt")
    _download(f"{release_url}/{asset}", work / asset)
    expected, actual = _expected_sha256(work / "sha256.txt", asset), _sha256(work / asset)
    if expected != actual:
        raise BackendError(
            f"{asset} has sha256 {actual}, the release says {expected}",
            code="runtime_checksum_mismatch",
            hint="nothing was installed; retry, and do not use that download",
        )


def _unpack_binaries(tarball: Path, tag: str, arch: str, work: Path) -> str:
    """Firecracker (as `work/fc`) and, when the release has one, its jailer (`work/jailer`) out of
    the release tarball, each checked against its SHA256SUMS; return firecracker's sha256.

    Raises:
        BackendError: runtime_download_failed, runtime_checksum_mismatch.
    """
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            sums = _inner_sums(archive)
            binary = _member(archive, f"firecracker-{tag}-{arch}")
            if binary is None:
                raise BackendError(
                    f"{tarball.name} holds no firecracker-{tag}-{arch}",
                    code="runtime_download_failed",
                    hint=_DOWNLOAD_HINT,
                )
            digest = _extract_verified(archive, binary, work / "fc", sums)
            jailer = _member(archive, f"jailer-{tag}-{arch}")
            if jailer is not None:
                _extract_verified(archive, jailer, work / "jailer", sums)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackendError(f"{tarball.name} is not a readable tarball: {exc}", code="runtime_download_failed") from None
    return digest


def install_runtime(
    home: Path | None = None,
    version: str | None = None,
    *,
    base_url: str = RELEASES_URL,
    machine: str | None = None,
) -> InstalledRuntime:
    """Download, verify and install Firecracker (and its jailer) into `<home>/runtime`.

    Raises:
        InvalidArgument: invalid_version.
        BackendError: firecracker_too_old, unsupported_arch, runtime_download_failed (no network,
            no such release), runtime_checksum_mismatch,
            runtime_version_mismatch (nothing is installed after either),
            firecracker_broken (the verified binary does not run here).
    """
    match = _VERSION_RE.match(version or DEFAULT_VERSION)
    if match is None:
        raise InvalidArgument(f"{version!r} is not a Firecracker version", code="invalid_version", hint="e.g. 1.12.1")
    require_supported_version(match.group(1), f"asked for v{match.group(1)}")
    tag, arch = f"v{match.group(1)}", guest_arch(machine)
    asset = f"firecracker-{tag}-{arch}.tgz"
    target = runtime_dir(home)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".install-", dir=target) as scratch:
        work = Path(scratch)
        _download_verified(f"{base_url.rstrip('/')}/{tag}", asset, work)
        digest = _unpack_binaries(work / asset, tag, arch, work)
        runs_as = firecracker_version(work / "fc")
        if runs_as.split("-")[0] != match.group(1):
            raise BackendError(
                f"the release {tag} holds a firecracker that says it is v{runs_as}",
                code="runtime_version_mismatch",
                hint="nothing was installed; do not use that download",
            )
        os.replace(work / "fc", target / "firecracker")
        jailer = None
        if (work / "jailer").exists():
            os.replace(work / "jailer", target / "jailer")
            jailer = str(target / "jailer")
    return InstalledRuntime(match.group(1), str(target / "firecracker"), jailer, digest)
