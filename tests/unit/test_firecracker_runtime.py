"""Finding the firecracker binary, reading its version, and `roost runtime install`.

The installer runs against a locally built fake release (same names and layout as
Firecracker's GitHub releases: `vX/firecracker-vX-ARCH.tgz`, its `.sha256.txt`, and
`release-vX-ARCH/{firecracker,jailer}-vX-ARCH` plus `SHA256SUMS` inside) served over
real HTTP on 127.0.0.1, so download, checksum checks and extraction all run for real.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roost import Roost
from roost.backends.firecracker.backend import FirecrackerBackend
from roost.backends.firecracker.binary import (
    FIRECRACKER_ENV,
    find_firecracker,
    firecracker_version,
    guest_arch,
    install_runtime,
    release_arch,
    runtime_dir,
)
from roost.backends.kvm import KvmReport
from roost.cli.main import main
from roost.errors import BackendError, InvalidArgument


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _tar_add(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    archive.addfile(info, io.BytesIO(data))


def build_release(
    root: Path,
    version: str = "1.12.1",
    arch: str = "x86_64",
    *,
    says: str | None = None,
    tamper_after_sums: bool = False,
    wrong_tarball_sum: bool = False,
    with_jailer: bool = True,
) -> Path:
    """Write a fake Firecracker release under `root/v<version>/`; return the tarball."""
    tag = f"v{version}"
    firecracker = f'#!/bin/sh\necho "Firecracker v{says or version}"\n'.encode()
    jailer = f'#!/bin/sh\necho "Jailer v{version}"\n'.encode()
    members = {f"firecracker-{tag}-{arch}": firecracker}
    if with_jailer:
        members[f"jailer-{tag}-{arch}"] = jailer
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items())
    if tamper_after_sums:
        members[f"firecracker-{tag}-{arch}"] = firecracker + b"# tampered\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            _tar_add(archive, f"release-{tag}-{arch}/{name}", data)
        _tar_add(archive, f"release-{tag}-{arch}/SHA256SUMS", sums.encode(), 0o644)
        _tar_add(archive, f"release-{tag}-{arch}/LICENSE", b"Apache-2.0\n", 0o644)
    (root / tag).mkdir(parents=True, exist_ok=True)
    tarball = root / tag / f"firecracker-{tag}-{arch}.tgz"
    tarball.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(b"something else" if wrong_tarball_sum else buffer.getvalue()).hexdigest()
    (root / tag / f"{tarball.name}.sha256.txt").write_text(f"{digest}  {tarball.name}\n")
    return tarball


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def releases(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, directory it serves): a release server on 127.0.0.1."""
    root = tmp_path / "releases"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    # A short poll interval: shutdown() waits one, and teardown must not pay a timeout.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def installed_files(home: Path) -> list[str]:
    target = runtime_dir(home)
    return sorted(p.name for p in target.iterdir()) if target.exists() else []


# -- install ------------------------------------------------------------------------------------
def test_install_puts_the_verified_binaries_in_the_homes_runtime_dir(
    tmp_path: Path, releases: tuple[str, Path]
) -> None:
    url, root = releases
    tarball = build_release(root)
    installed = install_runtime(tmp_path / "home", "1.12.1", base_url=url, machine="x86_64")
    assert installed.version == "1.12.1"
    assert installed.firecracker == str(tmp_path / "home" / "runtime" / "firecracker")
    assert installed.jailer == str(tmp_path / "home" / "runtime" / "jailer")
    binary = Path(installed.firecracker)
    assert installed.sha256 == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert os.access(binary, os.X_OK)
    assert firecracker_version(binary) == "1.12.1"
    assert installed_files(tmp_path / "home") == ["firecracker", "jailer"]  # no scratch left
    assert json.loads(json.dumps(installed.to_dict()))["version"] == "1.12.1"
    assert tarball.exists()


def test_the_default_version_is_the_pinned_one_and_a_leading_v_is_accepted(
    tmp_path: Path, releases: tuple[str, Path]
) -> None:
    url, root = releases
    build_release(root, "1.12.1")
    assert install_runtime(tmp_path / "a", base_url=url, machine="x86_64").version == "1.12.1"
    assert install_runtime(tmp_path / "b", "v1.12.1", base_url=url, machine="x86_64").version == "1.12.1"


def test_a_tarball_that_does_not_match_the_releases_sha256_installs_nothing(
    tmp_path: Path, releases: tuple[str, Path]
) -> None:
    url, root = releases
    build_release(root, wrong_tarball_sum=True)
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.12.1", base_url=url, machine="x86_64")
    assert caught.value.code == "runtime_checksum_mismatch"
    assert "nothing was installed" in caught.value.hint
    assert installed_files(tmp_path / "home") == []


def test_a_binary_that_does_not_match_the_tarballs_sha256sums_installs_nothing(
    tmp_path: Path, releases: tuple[str, Path]
) -> None:
    url, root = releases
    build_release(root, tamper_after_sums=True)
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.12.1", base_url=url, machine="x86_64")
    assert caught.value.code == "runtime_checksum_mismatch"
    assert "SHA256SUMS" in caught.value.message
    assert installed_files(tmp_path / "home") == []


def test_a_failed_install_keeps_the_binary_installed_before(tmp_path: Path, releases: tuple[str, Path]) -> None:
    url, root = releases
    build_release(root, "1.12.1")
    first = install_runtime(tmp_path / "home", "1.12.1", base_url=url, machine="x86_64")
    build_release(root, "1.13.0", wrong_tarball_sum=True)
    with pytest.raises(BackendError):
        install_runtime(tmp_path / "home", "1.13.0", base_url=url, machine="x86_64")
    assert firecracker_version(Path(first.firecracker)) == "1.12.1"


def test_a_release_whose_binary_reports_another_version_installs_nothing(
    tmp_path: Path, releases: tuple[str, Path]
) -> None:
    url, root = releases
    build_release(root, "1.12.1", says="0.25.0")
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.12.1", base_url=url, machine="x86_64")
    assert caught.value.code == "runtime_version_mismatch"
    assert installed_files(tmp_path / "home") == []


def test_a_release_without_a_jailer_installs_firecracker_alone(tmp_path: Path, releases: tuple[str, Path]) -> None:
    url, root = releases
    build_release(root, with_jailer=False)
    installed = install_runtime(tmp_path / "home", "1.12.1", base_url=url, machine="x86_64")
    assert installed.jailer is None
    assert installed_files(tmp_path / "home") == ["firecracker"]


def test_a_version_that_was_never_released_is_a_download_failure_naming_the_http_status(
    tmp_path: Path, releases: tuple[str, Path]
) -> None:
    url, _root = releases
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "9.9.9", base_url=url, machine="x86_64")
    assert caught.value.code == "runtime_download_failed"
    assert "HTTP 404" in caught.value.message
    assert installed_files(tmp_path / "home") == []


def test_an_unreachable_release_server_is_a_download_failure_with_a_way_out(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.12.1", base_url=f"http://127.0.0.1:{closed_port}", machine="x86_64")
    assert caught.value.code == "runtime_download_failed"
    assert "ROOST_FIRECRACKER" in caught.value.hint


def test_a_malformed_version_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        install_runtime(tmp_path / "home", "latest; rm -rf /")
    assert caught.value.code == "invalid_version"


@pytest.mark.parametrize(
    ("machine", "arch"), [("x86_64", "x86_64"), ("AMD64", "x86_64"), ("aarch64", "aarch64"), ("arm64", "aarch64")]
)
def test_host_architectures_map_to_firecrackers_release_names(machine: str, arch: str) -> None:
    assert release_arch(machine) == arch


def test_an_architecture_firecracker_does_not_publish_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.12.1", machine="s390x")
    assert caught.value.code == "unsupported_arch"


def test_aarch64_is_refused_until_roost_builds_a_guest_for_it(tmp_path: Path) -> None:
    assert guest_arch("x86_64") == "x86_64"
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.12.1", machine="aarch64")
    assert caught.value.code == "unsupported_arch"
    assert "x86_64" in caught.value.message
    assert not runtime_dir(tmp_path / "home").exists() or not any(runtime_dir(tmp_path / "home").iterdir())


def test_installing_a_release_older_than_the_floor_is_refused_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        install_runtime(tmp_path / "home", "1.7.0", base_url="http://127.0.0.1:9/unreachable")
    assert caught.value.code == "firecracker_too_old"
    assert "1.8.0" in caught.value.message


@pytest.mark.parametrize("version", ["1.7.0", "1.4.1", "0.25.2"])
def test_a_firecracker_older_than_the_floor_is_unavailable_and_never_launched(tmp_path: Path, version: str) -> None:
    old = script(tmp_path / "firecracker", f'echo "Firecracker v{version}"')
    backend = FirecrackerBackend(binary=old, kvm=lambda: KvmReport("hardware", True, "ok"))
    availability = backend.availability()
    assert not availability.available
    assert f"v{version}" in availability.reason
    assert "1.8.0" in availability.reason
    with pytest.raises(BackendError) as caught:
        backend.require_binary(tmp_path)
    assert caught.value.code == "firecracker_too_old"


@pytest.mark.parametrize("version", ["1.8.0", "1.12.1", "1.13.0-dev"])
def test_a_firecracker_at_or_above_the_floor_is_accepted(tmp_path: Path, version: str) -> None:
    binary = script(tmp_path / "firecracker", f'echo "Firecracker v{version}"')
    backend = FirecrackerBackend(binary=binary, kvm=lambda: KvmReport("hardware", True, "ok"), jail=None)
    assert backend.require_binary(tmp_path) == binary
    assert backend.availability().available


def test_the_sdk_and_the_cli_refuse_a_malformed_version_before_any_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Roost(home=tmp_path / "home") as roost, pytest.raises(InvalidArgument):
        roost.install_runtime("one.two")
    assert main(["--home", str(tmp_path / "home"), "runtime", "install", "--version", "one.two", "--json"]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "invalid_version"


# -- finding and asking the binary ----------------------------------------------------------------
def test_roost_firecracker_wins_then_the_homes_runtime_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (tmp_path / "bin").mkdir()
    on_path = script(tmp_path / "bin" / "firecracker", 'echo "Firecracker v1.0.0"')
    runtime_dir(home).mkdir(parents=True)
    installed = script(runtime_dir(home) / "firecracker", 'echo "Firecracker v1.12.1"')
    explicit = script(tmp_path / "mine", 'echo "Firecracker v1.5.0"')
    with monkeypatch.context() as patched:
        patched.setenv("PATH", str(tmp_path / "bin"))
        patched.setenv(FIRECRACKER_ENV, str(explicit))
        assert find_firecracker(home) == (explicit, "$ROOST_FIRECRACKER")
        patched.delenv(FIRECRACKER_ENV)
        assert find_firecracker(home) == (installed, "roost runtime")
        assert find_firecracker(tmp_path / "other-home") == (on_path, "PATH")
        patched.setenv("PATH", str(tmp_path / "empty"))
        binary, why = find_firecracker(tmp_path / "other-home")
        assert binary is None
        assert "roost runtime install" in why


def test_a_roost_firecracker_that_is_not_executable_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setenv(FIRECRACKER_ENV, str(tmp_path / "missing"))
        binary, why = find_firecracker(tmp_path)
    assert binary is None
    assert why == f"${FIRECRACKER_ENV}={tmp_path / 'missing'} is not an executable file"


def test_the_version_is_read_from_firecracker_dash_dash_version(tmp_path: Path) -> None:
    binary = script(tmp_path / "fc", 'echo "Firecracker v1.12.1"; echo; echo "exiting successfully" >&2')
    assert firecracker_version(binary) == "1.12.1"


@pytest.mark.parametrize("body", ['echo "not firecracker"', 'echo "Firecracker v1.12.1"; exit 3', "exit 0"])
def test_a_binary_that_does_not_answer_like_firecracker_is_firecracker_broken(tmp_path: Path, body: str) -> None:
    with pytest.raises(BackendError) as caught:
        firecracker_version(script(tmp_path / "fc", body))
    assert caught.value.code == "firecracker_broken"


def test_a_binary_that_cannot_run_at_all_is_firecracker_broken(tmp_path: Path) -> None:
    binary = tmp_path / "fc"
    binary.write_bytes(b"\x7fELF garbage")
    binary.chmod(0o755)
    with pytest.raises(BackendError) as caught:
        firecracker_version(binary)
    assert caught.value.code == "firecracker_broken"
