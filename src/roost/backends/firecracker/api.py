"""A small typed client for Firecracker's HTTP API on its Unix socket.

One method per endpoint roost uses; configs are frozen dataclasses that
serialise to exactly the JSON Firecracker expects. Errors are translated here,
once: an answer outside 2xx becomes `BackendError(vmm_fault)` carrying
Firecracker's own `fault_message`, and a socket that cannot be reached (or
that stops answering) becomes `BackendError(vmm_unreachable)`.

Imports: errors, protocol.addresses, httpx2 and the standard library. Never
another backend.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx

from roost.errors import BackendError, Remedy
from roost.protocol.addresses import unix_sockaddr

__all__ = [
    "BootSource",
    "Drive",
    "EntropyDevice",
    "FirecrackerApi",
    "MachineConfig",
    "NetworkInterface",
    "VsockDevice",
]

DEFAULT_TIMEOUT = 5.0
FAULT_HINT = "the VMM rejected `{call}`; its log (firecracker.log in the workspace directory) has the details"
UNREACHABLE = Remedy("the VMM is not answering on its API socket; check whether it died", "workspace_status")


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class MachineConfig:
    """`PUT /machine-config`: vCPUs and memory (MiB) of the microVM."""

    vcpu_count: int
    mem_size_mib: int
    smt: bool = False
    track_dirty_pages: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BootSource:
    """`PUT /boot-source`: an uncompressed ELF kernel, an optional initrd, the kernel command line."""

    kernel_image_path: str
    boot_args: str | None = None
    initrd_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(asdict(self))


@dataclass(frozen=True)
class Drive:
    """`PUT /drives/{drive_id}`: a virtio-blk disk backed by a host file.

    `Writeback` offers the guest a flush that Firecracker turns into an fsync of the backing
    file; Firecracker's default, `Unsafe`, acknowledges flushes without one, so a host crash
    could lose what a persistent workspace had synced.
    """

    drive_id: str
    path_on_host: str
    is_root_device: bool = False
    is_read_only: bool = False
    cache_type: Literal["Unsafe", "Writeback"] = "Writeback"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EntropyDevice:
    """`PUT /entropy`: a virtio-rng device fed from the host's CSPRNG (no rate limit)."""

    def to_json(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class VsockDevice:
    """`PUT /vsock`: the guest's vsock device and the host-side Unix socket Firecracker binds for it."""

    guest_cid: int
    uds_path: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NetworkInterface:
    """`PUT /network-interfaces/{iface_id}`: a virtio-net device over a host TAP device."""

    iface_id: str
    host_dev_name: str
    guest_mac: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _without_none(asdict(self))


def _fault_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("fault_message"), str):
        return str(body["fault_message"])
    text = response.text.strip()
    return text or f"HTTP {response.status_code} without a fault message"


class FirecrackerApi:
    """Requests to one Firecracker process over its API socket.

    Socket paths too long for `sockaddr_un` are reached through a held
    descriptor of their directory, so a deep `$ROOST_HOME` still works.
    """

    def __init__(self, socket_path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = Path(socket_path)
        address, self._dir_fd = unix_sockaddr(str(self.socket_path))
        # Plain HTTP on a local socket: no TLS context to build (tens of ms), and no
        # $HTTP_PROXY from the environment may capture http://localhost.
        transport = httpx.HTTPTransport(uds=address, verify=False)
        self._client = httpx.Client(
            transport=transport, base_url="http://localhost", timeout=timeout, verify=False, trust_env=False
        )

    def close(self) -> None:
        self._client.close()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def __enter__(self) -> FirecrackerApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one place requests go out and errors come in ----------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        call = f"{method} {path}"
        try:
            response = self._client.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise BackendError(
                f"cannot reach the VMM API at {self.socket_path.name} ({call}): {exc or type(exc).__name__}",
                code="vmm_unreachable",
                remedy=UNREACHABLE,
                details={"call": call},
            ) from None
        if not response.is_success:
            raise BackendError(
                _fault_text(response),
                code="vmm_fault",
                hint=FAULT_HINT.format(call=call),
                details={"call": call, "status": response.status_code},
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"the VMM answered {call} with something that is not JSON",
                code="vmm_fault",
                hint=FAULT_HINT.format(call=call),
                details={"call": call, "status": response.status_code},
            ) from None

    def _get_object(self, path: str) -> dict[str, Any]:
        answer = self._request("GET", path)
        return answer if isinstance(answer, dict) else {}

    # -- reads -----------------------------------------------------------------------
    def instance_info(self) -> dict[str, Any]:
        """`GET /`: id, state (`Not started`, `Running`, `Paused`) and VMM version.

        Raises:
            BackendError: vmm_unreachable, vmm_fault.
        """
        return self._get_object("/")

    def vm_config(self) -> dict[str, Any]:
        """`GET /vm/config`: the whole configuration as Firecracker holds it.

        Raises:
            BackendError: vmm_unreachable, vmm_fault.
        """
        return self._get_object("/vm/config")

    # -- configuration (before InstanceStart) --------------------------------------
    def put_machine_config(self, config: MachineConfig) -> None:
        """Raises: BackendError: vmm_fault (e.g. zero vCPUs or memory), vmm_unreachable."""
        self._request("PUT", "/machine-config", config.to_json())

    def put_boot_source(self, source: BootSource) -> None:
        """Raises: BackendError: vmm_fault (e.g. a kernel or initrd that cannot be opened), vmm_unreachable."""
        self._request("PUT", "/boot-source", source.to_json())

    def put_drive(self, drive: Drive) -> None:
        """Raises: BackendError: vmm_fault (e.g. a backing file that does not exist), vmm_unreachable."""
        self._request("PUT", f"/drives/{drive.drive_id}", drive.to_json())

    def put_entropy(self, device: EntropyDevice) -> None:
        """Raises: BackendError: vmm_fault (e.g. after InstanceStart), vmm_unreachable."""
        self._request("PUT", "/entropy", device.to_json())

    def put_vsock(self, device: VsockDevice) -> None:
        """Raises: BackendError: vmm_fault (e.g. the host-side socket path is taken), vmm_unreachable."""
        self._request("PUT", "/vsock", device.to_json())

    def put_network_interface(self, interface: NetworkInterface) -> None:
        """Raises: BackendError: vmm_fault (e.g. the TAP device cannot be opened), vmm_unreachable."""
        self._request("PUT", f"/network-interfaces/{interface.iface_id}", interface.to_json())

    # -- actions and state -------------------------------------------------------------
    def instance_start(self) -> None:
        """Boot the configured microVM.

        Raises:
            BackendError: vmm_fault (e.g. a kernel that is not an ELF vmlinux), vmm_unreachable.
        """
        self._request("PUT", "/actions", {"action_type": "InstanceStart"})

    def send_ctrl_alt_del(self) -> None:
        """Ask the guest to shut down (its init sees Ctrl-Alt-Del).

        Raises:
            BackendError: vmm_fault (e.g. before the VM started), vmm_unreachable.
        """
        self._request("PUT", "/actions", {"action_type": "SendCtrlAltDel"})

    def pause(self) -> None:
        """Raises: BackendError: vmm_fault (e.g. not started), vmm_unreachable."""
        self._request("PATCH", "/vm", {"state": "Paused"})

    def resume(self) -> None:
        """Raises: BackendError: vmm_fault (e.g. not started), vmm_unreachable."""
        self._request("PATCH", "/vm", {"state": "Resumed"})

    def create_snapshot(self, snapshot_path: str, mem_file_path: str) -> None:
        """Write the paused VM's state and all of its memory to host files (a Full snapshot: a Diff
        one would need `track_dirty_pages` from boot, which costs every VM and no template needs).

        Raises:
            BackendError: vmm_fault (e.g. the VM is not paused), vmm_unreachable.
        """
        body = {
            "snapshot_type": "Full",
            "snapshot_path": snapshot_path,
            "mem_file_path": mem_file_path,
        }
        self._request("PUT", "/snapshot/create", body)

    def load_snapshot(self, snapshot_path: str, mem_file_path: str, *, resume: bool = False) -> None:
        """Restore a VM from a snapshot into this (unconfigured) VMM.

        Raises:
            BackendError: vmm_fault (e.g. boot resources already configured), vmm_unreachable.
        """
        body = {
            "snapshot_path": snapshot_path,
            "mem_backend": {"backend_type": "File", "backend_path": mem_file_path},
            "resume_vm": resume,
        }
        self._request("PUT", "/snapshot/load", body)
