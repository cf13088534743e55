"""Integration fixtures: a real local OCI registry (Debian's docker-registry on 127.0.0.1), one per xdist
worker, the real, pinned Firecracker binary (fakes of it are in firecracker_fakes.py), and the network
gateway's lab (network_gateway_fixtures.py: test_host, test_dns, workspace)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from firecracker_fakes import firecracker_binary
from network_gateway_fixtures import test_dns, test_host, workspace  # noqa: F401 (fixtures, found here by pytest)
from registry import RunningRegistry, fetch_registry_binary, start_registry, stop_registry_process


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: uses real external tools (registry, firecracker binary, QEMU)")


@pytest.fixture(scope="session")
def running_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """The started registry with its storage dir; skips (with the reason) when the binary cannot be had."""
    binary, reason = fetch_registry_binary()
    if binary is None:
        pytest.skip(reason)
    registry = start_registry(binary, tmp_path_factory.mktemp("registry"))
    try:
        yield registry
    finally:
        stop_registry_process(registry.process)


@pytest.fixture(scope="session")
def local_registry(running_registry: RunningRegistry) -> str:
    """`host:port` of a fresh, auth-free docker-registry on 127.0.0.1 (deletes enabled)."""
    return running_registry.address


@pytest.fixture(scope="session")
def local_registry_storage(running_registry: RunningRegistry) -> Path:
    """The registry's filesystem storage root, for tests that tamper with stored blobs."""
    return running_registry.storage


@pytest.fixture(scope="session")
def real_binary() -> Path:
    """The pinned firecracker binary; skips (with the reason) when it cannot be had."""
    binary, reason = firecracker_binary()
    if binary is None:
        pytest.skip(reason)
    return binary
