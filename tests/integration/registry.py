"""A real local OCI registry for tests: Debian's `docker-registry` binary on 127.0.0.1, never installed.

Finds the binary (`$ROOST_DOCKER_REGISTRY`, the repo's cache, `$PATH`, else
`scripts/fetch-docker-registry.sh`), starts it with a throwaway config and
storage dir on a free loopback port, waits for `GET /v2/` under a deadline and
stops it by pid.

Imports: the standard library only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO / "scripts" / "fetch-docker-registry.sh"
CACHE_DIR = Path(os.environ.get("ROOST_REGISTRY_CACHE", REPO / ".cache" / "docker-registry"))
CACHED_BINARY = CACHE_DIR / "root" / "usr" / "bin" / "docker-registry"
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class RunningRegistry:
    address: str  # host:port
    storage: Path  # the filesystem driver's rootdirectory
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float  # seconds from spawn to the first 200 on /v2/


def find_registry_binary() -> Path | None:
    """The docker-registry binary already on this machine, if any."""
    override = os.environ.get("ROOST_DOCKER_REGISTRY")
    if override:
        return Path(override) if os.access(override, os.X_OK) else None
    if os.access(CACHED_BINARY, os.X_OK):
        return CACHED_BINARY
    found = shutil.which("docker-registry")
    return Path(found) if found else None


def fetch_registry_binary() -> tuple[Path | None, str]:
    """Find the binary, running the fetch script (under a lock shared by xdist workers) when missing.

    Returns the path, or None and the reason it could not be had.
    """
    binary = find_registry_binary()
    if binary is not None:
        return binary, ""
    if os.environ.get("ROOST_DOCKER_REGISTRY"):
        return None, f"$ROOST_DOCKER_REGISTRY={os.environ['ROOST_DOCKER_REGISTRY']} is not an executable"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        binary = find_registry_binary()
        if binary is not None:
            return binary, ""
        result = subprocess.run(
            ["bash", str(FETCH_SCRIPT), str(CACHE_DIR)], capture_output=True, text=True, timeout=300, check=False
        )
    binary = find_registry_binary()
    if binary is None:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"docker-registry is not available ({FETCH_SCRIPT.name} exited {result.returncode}: {tail})"
    return binary, ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(storage: Path, address: str) -> str:
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_registry(binary: Path, workdir: Path, attempts: int = 3) -> RunningRegistry:
    """Start a registry on a free 127.0.0.1 port and wait until it answers; retry if the port was taken.

    Raises:
        RuntimeError: it never answered (the message carries its log).
    """
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "registry.log"
    last_log = ""
    for attempt in range(attempts):
        address = f"127.0.0.1:{_free_port()}"
        config = workdir / f"config-{attempt}.yml"
        config.write_text(_config(storage, address))
        with open(log_path, "wb") as log:
            started = time.monotonic()
            process = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = started + READY_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(address):
                return RunningRegistry(address, storage, process, log_path, time.monotonic() - started)
            time.sleep(0.01)
        stop_registry_process(process)
        last_log = log_path.read_text(errors="replace")[-2000:]
        if "address already in use" not in last_log:
            break
    raise RuntimeError(f"docker-registry did not answer GET /v2/ within {READY_TIMEOUT}s; its log:\n{last_log}")


def stop_registry_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate by pid, wait briefly, then kill."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def blob_data_path(storage: Path, digest: str) -> Path:
    """Where the filesystem driver keeps a blob's bytes."""
    hex_digest = digest.split(":", 1)[1]
    return storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data"
