"""Fetching Debian packages for the guest (kernel, busybox) into the image cache, and unpacking them.

Packages come from the mirror apt on this host is configured with, through
apt's own clients: `apt-cache show` names the exact version and its sha256,
`apt-get download` fetches it into `<cache>/guest/debs/`, and the file is
checked against that sha256 before it is kept. `apt-get update` runs only
when a package cannot be found or fetched with the lists apt already has.
Unpacking is `dpkg-deb -x`: no root, no mounts. Subprocess failures are
translated here, once, into `ImageError`s.

Imports: errors, store.atomic and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from roost.errors import ImageError
from roost.store.atomic import write_atomic

_APT_TIMEOUT = 600.0
# What decides apt's candidates: its package lists and its sources and pins.
_APT_STATE = (
    Path("/var/lib/apt/lists"),
    Path("/etc/apt/sources.list"),
    Path("/etc/apt/sources.list.d"),
    Path("/etc/apt/preferences"),
    Path("/etc/apt/preferences.d"),
)


@dataclass(frozen=True)
class DebRef:
    """One exact package version as apt's index describes it."""

    package: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.package}_{self.version.replace(':', '%3a')}_{self.sha256[:12]}.deb"


@dataclass(frozen=True)
class FetchedDeb:
    ref: DebRef
    path: Path


def _run(argv: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_APT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ImageError(
            f"{argv[0]} is not installed",
            code="no_apt",
            hint="the guest kernel and busybox come from Debian packages: run roost on a Debian-like host",
        ) from None
    except subprocess.TimeoutExpired:
        raise ImageError(f"{' '.join(argv[:2])} took longer than {_APT_TIMEOUT:.0f} s", code="apt_failed") from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or ["no output"])[-1]


def parse_stanza(text: str) -> dict[str, str]:
    """The fields of the first deb822 stanza in `text` (continuation lines folded in)."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and last:
            fields[last] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip()
            fields[last] = value.strip()
    return fields


def first_dependency(depends: str) -> tuple[str, str | None]:
    """(package, exact version or None) of the first alternative of the first entry of a Depends field."""
    first = depends.split(",")[0].split("|")[0].strip()
    match = re.fullmatch(r"([a-z0-9][a-z0-9+.-]*)(?::\w+)?\s*(?:\(\s*=\s*([^)\s]+)\s*\))?.*", first)
    if match is None:
        raise ImageError(f"cannot read the dependency {first!r}", code="guest_kernel_unavailable")
    return match.group(1), match.group(2)


def apt_state_stamp(paths: tuple[Path, ...] = _APT_STATE) -> str:
    """A digest of the names, sizes and times of apt's lists, sources and pins: it changes when
    `apt-cache show` could answer differently."""
    digest = hashlib.sha256()
    for path in paths:
        entries = sorted(path.iterdir()) if path.is_dir() else [path]
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue
            digest.update(f"{entry}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class AptSource:
    """apt on this host, with at most one `apt-get update` per instance.

    With a `memo` file, answers from `apt-cache show` are remembered until apt's state
    changes, so a warm image lookup runs no apt process at all.
    """

    def __init__(self, memo: Path | None = None) -> None:
        self._updated = False
        self._memo = memo
        self._stamp: str | None = None

    def _recall(self, spec: str) -> tuple[DebRef, dict[str, str]] | None:
        if self._memo is None:
            return None
        try:
            data = json.loads(self._memo.read_text())
            if data.get("stamp") != self._current_stamp():
                return None
            fields = {str(k): str(v) for k, v in data["specs"][spec].items()}
            return DebRef(fields["Package"], fields["Version"], fields["SHA256"]), fields
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _remember(self, spec: str, fields: dict[str, str]) -> None:
        if self._memo is None:
            return
        stamp = self._current_stamp()
        try:
            data = json.loads(self._memo.read_text())
            specs = data["specs"] if data.get("stamp") == stamp and isinstance(data.get("specs"), dict) else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            specs = {}
        specs[spec] = {key: fields[key] for key in ("Package", "Version", "SHA256", "Depends") if key in fields}
        try:
            self._memo.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._memo, json.dumps({"stamp": stamp, "specs": specs}, indent=2).encode(), mode=0o644)
        except OSError:
            pass  # only a lost shortcut

    def _current_stamp(self) -> str:
        if self._stamp is None:
            self._stamp = apt_state_stamp()
        return self._stamp

    def _update(self) -> bool:
        if self._updated:
            return False
        self._updated = True
        result = _run(["apt-get", "update", "-qq"])
        return result.returncode == 0

    def resolve(self, spec: str) -> tuple[DebRef, dict[str, str]]:
        """The candidate version of `spec` (`name` or `name=version`) and its index fields.

        Raises:
            ImageError: package_unavailable when apt knows no such package even after an update.
        """
        remembered = self._recall(spec)
        if remembered is not None:
            return remembered
        for attempt in (0, 1):
            result = _run(["apt-cache", "show", "--no-all-versions", spec])
            fields = parse_stanza(result.stdout) if result.returncode == 0 else {}
            if fields.get("Package") and fields.get("SHA256"):
                fields["SHA256"] = fields["SHA256"].lower()
                self._remember(spec, fields)
                return DebRef(fields["Package"], fields["Version"], fields["SHA256"]), fields
            if attempt == 0 and self._update():
                self._stamp = None
                continue
            raise ImageError(
                f"apt knows no package {spec!r}: {_last_line(result.stderr or result.stdout)}",
                code="package_unavailable",
                hint="check apt's sources (Debian bookworm main) and run `apt-get update`",
            )
        raise AssertionError("unreachable")

    def fetch(self, ref: DebRef, debs_dir: Path) -> FetchedDeb:
        """`ref`'s .deb in `debs_dir`, downloaded and checked against its sha256 if not there yet.

        Raises:
            ImageError: download_failed, digest_mismatch.
        """
        final = debs_dir / ref.filename
        if final.is_file():
            return FetchedDeb(ref, final)
        debs_dir.mkdir(parents=True, exist_ok=True)
        for attempt in (0, 1):
            with tempfile.TemporaryDirectory(prefix="download-", dir=debs_dir) as tmp:
                result = _run(["apt-get", "download", "-qq", f"{ref.package}={ref.version}"], cwd=Path(tmp))
                downloaded = sorted(Path(tmp).glob("*.deb"))
                if result.returncode == 0 and downloaded:
                    actual = file_sha256(downloaded[0])
                    if actual != ref.sha256:
                        raise ImageError(
                            f"{ref.package} {ref.version} does not match apt's index (sha256 {actual})",
                            code="digest_mismatch",
                            hint="the mirror served a different file; run `apt-get update` and retry",
                        )
                    os.chmod(downloaded[0], 0o644)
                    os.replace(downloaded[0], final)
                    return FetchedDeb(ref, final)
            if attempt == 0 and self._update():
                continue
            raise ImageError(
                f"cannot download {ref.package} {ref.version}: {_last_line(result.stderr or result.stdout)}",
                code="download_failed",
                hint="check that the Debian mirror in apt's sources is reachable",
            )
        raise AssertionError("unreachable")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def unpack(deb: Path, dest: Path) -> None:
    """Extract `deb`'s files into `dest` (dpkg-deb -x; no maintainer scripts run).

    Raises:
        ImageError: unpack_failed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("dpkg-deb") is None:
        raise ImageError("dpkg-deb is not installed", code="no_apt", hint="apt-get install dpkg")
    result = _run(["dpkg-deb", "-x", str(deb), str(dest)])
    if result.returncode != 0:
        raise ImageError(f"cannot unpack {deb.name}: {_last_line(result.stderr)}", code="unpack_failed")
