"""How `FirecrackerApi` talks HTTP over a Unix socket and translates what comes back.

The server is an in-test fake speaking raw HTTP/1.1 on a Unix socket with canned answers,
so each case (a fault, a body that is not JSON, a hang, a hang-up) is exact.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from roost.backends.firecracker.api import (
    BootSource,
    Drive,
    FirecrackerApi,
    MachineConfig,
    NetworkInterface,
    VsockDevice,
)
from roost.errors import BackendError


def http_response(status: int, body: bytes = b"", reason: str = "X") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


@dataclass
class CannedApi:
    """Answers every request with `answer` (raw bytes), or hangs up / stays silent."""

    path: Path
    answer: bytes = field(default_factory=lambda: http_response(204))
    mode: str = "answer"  # or "hang-up", "silent"
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(8)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            self._converse(conn)
        except OSError:
            pass  # closed under us at teardown
        finally:
            conn.close()

    def _converse(self, conn: socket.socket) -> None:
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", 0))
            while len(rest) < length:
                rest += conn.recv(65536)
            body, data = rest[:length], rest[length:]
            self.requests.append((method, target, json.loads(body) if body else None))
            if self.mode == "hang-up":
                conn.close()
                return
            if self.mode == "silent":
                self._stop.wait()
                return
            conn.sendall(self.answer)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CannedApi]:
    canned = CannedApi(tmp_path / "fc.sock")
    try:
        yield canned
    finally:
        canned.close()


@pytest.fixture
def api(server: CannedApi) -> Iterator[FirecrackerApi]:
    client = FirecrackerApi(server.path, timeout=2)
    try:
        yield client
    finally:
        client.close()


def test_each_config_is_sent_as_firecrackers_json_to_its_endpoint(server: CannedApi, api: FirecrackerApi) -> None:
    api.put_machine_config(MachineConfig(vcpu_count=2, mem_size_mib=1024))
    api.put_boot_source(BootSource("/k/vmlinux", "console=ttyS0", "/k/initrd"))
    api.put_boot_source(BootSource("/k/vmlinux"))
    api.put_drive(Drive("rootfs", "/ws/disk.ext4", is_root_device=True))
    api.put_vsock(VsockDevice(3, "v.sock"))
    api.put_network_interface(NetworkInterface("eth0", "tap0"))
    api.instance_start()
    api.send_ctrl_alt_del()
    api.pause()
    api.resume()
    api.create_snapshot("/s/state", "/s/mem")
    api.load_snapshot("/s/state", "/s/mem", resume=True)
    assert server.requests == [
        ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 1024, "smt": False, "track_dirty_pages": False}),
        (
            "PUT",
            "/boot-source",
            {"kernel_image_path": "/k/vmlinux", "boot_args": "console=ttyS0", "initrd_path": "/k/initrd"},
        ),
        ("PUT", "/boot-source", {"kernel_image_path": "/k/vmlinux"}),
        (
            "PUT",
            "/drives/rootfs",
            {
                "drive_id": "rootfs",
                "path_on_host": "/ws/disk.ext4",
                "is_root_device": True,
                "is_read_only": False,
                "cache_type": "Writeback",
            },
        ),
        ("PUT", "/vsock", {"guest_cid": 3, "uds_path": "v.sock"}),
        ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ("PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
        ("PATCH", "/vm", {"state": "Paused"}),
        ("PATCH", "/vm", {"state": "Resumed"}),
        ("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": "/s/state", "mem_file_path": "/s/mem"}),
        (
            "PUT",
            "/snapshot/load",
            {
                "snapshot_path": "/s/state",
                "mem_backend": {"backend_type": "File", "backend_path": "/s/mem"},
                "resume_vm": True,
            },
        ),
    ]


def test_a_json_answer_is_returned_parsed(server: CannedApi, api: FirecrackerApi) -> None:
    server.answer = http_response(200, b'{"id": "ws-1", "state": "Running", "vmm_version": "1.12.1"}')
    assert api.instance_info() == {"id": "ws-1", "state": "Running", "vmm_version": "1.12.1"}
    assert api.vm_config()["state"] == "Running"


def test_a_fault_message_becomes_a_vmm_fault_with_firecrackers_own_words(
    server: CannedApi, api: FirecrackerApi
) -> None:
    fault = "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size."
    server.answer = http_response(400, json.dumps({"fault_message": fault}).encode())
    with pytest.raises(BackendError) as caught:
        api.put_machine_config(MachineConfig(vcpu_count=1, mem_size_mib=0))
    assert caught.value.code == "vmm_fault"
    assert caught.value.message == fault
    assert "PUT /machine-config" in caught.value.hint
    assert caught.value.details == {"call": "PUT /machine-config", "status": 400}


def test_a_server_error_without_a_fault_message_still_says_what_came_back(
    server: CannedApi, api: FirecrackerApi
) -> None:
    server.answer = http_response(500, b"internal trouble")
    with pytest.raises(BackendError) as caught:
        api.instance_start()
    assert (caught.value.code, caught.value.message) == ("vmm_fault", "internal trouble")
    server.answer = http_response(503)
    with pytest.raises(BackendError) as caught:
        api.instance_start()
    assert caught.value.message == "HTTP 503 without a fault message"


def test_a_success_whose_body_is_not_json_is_a_vmm_fault(server: CannedApi, api: FirecrackerApi) -> None:
    server.answer = http_response(200, b"<html>")
    with pytest.raises(BackendError) as caught:
        api.instance_info()
    assert caught.value.code == "vmm_fault"
    assert "not JSON" in caught.value.message


def test_no_socket_at_all_is_vmm_unreachable(tmp_path: Path) -> None:
    with FirecrackerApi(tmp_path / "nothing.sock") as api, pytest.raises(BackendError) as caught:
        api.instance_info()
    assert caught.value.code == "vmm_unreachable"
    assert "GET /" in caught.value.message
    assert "roost.workspace('WORKSPACE').info()" in caught.value.hint


def test_a_vmm_that_hangs_up_mid_request_is_vmm_unreachable(server: CannedApi, api: FirecrackerApi) -> None:
    server.mode = "hang-up"
    with pytest.raises(BackendError) as caught:
        api.put_vsock(VsockDevice(3, "v.sock"))
    assert caught.value.code == "vmm_unreachable"


def test_a_vmm_that_never_answers_is_vmm_unreachable_after_the_timeout(server: CannedApi) -> None:
    server.mode = "silent"
    with FirecrackerApi(server.path, timeout=0.2) as api, pytest.raises(BackendError) as caught:
        api.instance_info()
    assert caught.value.code == "vmm_unreachable"


def test_a_socket_path_too_long_for_sockaddr_un_is_reached_through_its_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("a" * 70) / ("b" * 70)
    deep.mkdir(parents=True)
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:  # the fake binds through the directory's descriptor too
        canned = CannedApi(Path(f"/proc/self/fd/{fd}/fc.sock"), answer=http_response(200, b'{"state": "Running"}'))
    finally:
        os.close(fd)
    try:
        assert len(str(deep / "fc.sock")) > 108
        with FirecrackerApi(deep / "fc.sock") as api:
            assert api.instance_info() == {"state": "Running"}
    finally:
        canned.close()
