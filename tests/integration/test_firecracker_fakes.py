"""The firecracker fakes (firecracker_fakes.py) kept honest: the fake VMM answers the requests
roost makes the way the real, pinned binary does, and the vsock relay refuses what Firecracker refuses.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
from firecracker_fakes import VsockRelay, unix_connect, wait_for_path, write_fake_vmm


def _run_vmm(binary: Path, cwd: Path) -> Iterator[Callable[[str, str, Any], tuple[int, Any]]]:
    proc = subprocess.Popen(
        [str(binary), "--api-sock", "fc.sock", "--id", "conformance"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_path(cwd / "fc.sock", proc)
        client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(cwd / "fc.sock")), base_url="http://localhost", timeout=5
        )

        def call(method: str, path: str, body: Any) -> tuple[int, Any]:
            response = client.request(method, path, json=body)
            return response.status_code, response.json() if response.content else None

        yield call
        client.close()
    finally:
        proc.kill()
        proc.wait()


def _conformance_requests(tmp: Path) -> list[tuple[str, str, Any]]:
    kernel, disk, missing = tmp / "vmlinux", tmp / "disk.img", tmp / "missing"
    kernel.write_bytes(b"")  # opens fine; no ELF header, so InstanceStart fails fast (never boots)
    disk.write_bytes(b"\0" * 8192)
    (tmp / "taken.sock").write_bytes(b"")
    drive = {"drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": True, "is_read_only": False}
    return [
        ("GET", "/", None),
        ("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128}),
        ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 0}),
        ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ("PUT", "/boot-source", {"kernel_image_path": str(missing)}),
        ("PUT", "/boot-source", {"kernel_image_path": str(kernel), "initrd_path": str(missing)}),
        ("PUT", "/boot-source", {"kernel_image_path": str(kernel), "boot_args": "console=ttyS0 reboot=k"}),
        ("PUT", "/drives/rootfs", {**drive, "path_on_host": str(missing)}),
        ("PUT", "/drives/other", drive),
        ("PUT", "/drives/rootfs", {**drive, "cache_type": "Writeback"}),
        ("PUT", "/entropy", {}),
        ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "track_dirty_pages": True}),
        ("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(tmp / "taken.sock")}),
        ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "v.sock"}),
        ("PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
        ("PATCH", "/vm", {"state": "Paused"}),
        ("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": "s", "mem_file_path": "m"}),
        ("PUT", "/bogus", {}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ("GET", "/", None),
    ]


def _modelled(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of GET /vm/config the fake models."""
    machine = config["machine-config"]
    return {
        "machine": (machine["vcpu_count"], machine["mem_size_mib"], machine["track_dirty_pages"]),
        "boot": config["boot-source"],
        "drives": [
            {k: d[k] for k in ("drive_id", "path_on_host", "is_root_device", "is_read_only", "cache_type")}
            for d in config["drives"]
        ],
        "vsock": config["vsock"],
        "entropy": config["entropy"],
    }


def _answers(binary: Path, cwd: Path, requests: list[tuple[str, str, Any]]) -> list[tuple[int, Any]]:
    cwd.mkdir()
    answers = []
    runner = _run_vmm(binary, cwd)
    call = next(runner)
    try:
        for method, path, body in requests:
            answers.append(call(method, path, body))
        answers.append((200, _modelled(call("GET", "/vm/config", None)[1])))
    finally:
        runner.close()
    return answers


def test_the_fake_vmm_answers_every_request_the_way_the_real_firecracker_does(
    real_binary: Path, tmp_path: Path
) -> None:
    (tmp_path / "files").mkdir()
    requests = _conformance_requests(tmp_path / "files")
    real_answers = _answers(real_binary, tmp_path / "real", requests)
    fake_answers = _answers(write_fake_vmm(tmp_path), tmp_path / "fake", requests)
    for (method, path, body), real, faked in zip(
        [*requests, ("GET", "/vm/config", None)], real_answers, fake_answers, strict=True
    ):
        assert faked == real, f"{method} {path} {body}: firecracker said {real}, the fake said {faked}"


def test_the_relay_closes_connects_for_a_port_nothing_listens_on(tmp_path: Path) -> None:
    relay = VsockRelay(tmp_path / "v.sock", lambda: tmp_path / "agent.sock", port=1024)
    try:
        with unix_connect(tmp_path / "v.sock", timeout=5) as sock:
            sock.sendall(b"CONNECT 7\n")
            assert sock.recv(64) == b""
        with unix_connect(tmp_path / "v.sock", timeout=5) as sock:
            sock.sendall(b"CONNECT 1024\n")
            assert sock.recv(64) == b""  # the right port, but no agent socket yet
        assert relay.attempts == 2
        assert relay.handshakes == 0
    finally:
        relay.close()


def _failed_load(binary: Path, cwd: Path) -> tuple[int, Any, int | None]:
    cwd.mkdir()
    proc = subprocess.Popen(
        [str(binary), "--api-sock", "fc.sock", "--id", "conformance"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_path(cwd / "fc.sock", proc)
        with httpx.Client(
            transport=httpx.HTTPTransport(uds=str(cwd / "fc.sock")), base_url="http://localhost", timeout=5
        ) as client:
            body = {"snapshot_path": "missing", "mem_backend": {"backend_type": "File", "backend_path": "m"}}
            response = client.put("/snapshot/load", json={**body, "resume_vm": True})
        try:
            code: int | None = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return response.status_code, response.json(), code
    finally:
        proc.kill()
        proc.wait()


def test_a_snapshot_that_does_not_load_is_a_fault_and_ends_the_vmm_as_firecracker_does(
    real_binary: Path, tmp_path: Path
) -> None:
    real = _failed_load(real_binary, tmp_path / "real")
    faked = _failed_load(write_fake_vmm(tmp_path), tmp_path / "fake")
    assert faked == real
    assert real[0] == 400 and real[2] == 1  # a fault, then the VMM exits: a fallback needs a new VMM
