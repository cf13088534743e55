"""The seam every backend implements: boot, stop, start and destroy a workspace's
agent, and hand back a handshaken connection to it (`AgentClient`).

Backends differ only in isolation and transport; every workspace operation
runs in the guest agent. A backend never imports another backend, and boots
from what orchestration made ready (`CreateSpec`). What a backend must remember
about a workspace (its boot record) it returns from `create`, `stop` and
`start` (the workspace's record keeps it as `boot`) and is given back on every call.

Imports: models, rpc and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from roost.models import Protection
from roost.rpc import AgentClient


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and why (not)."""

    name: str
    available: bool
    reason: str
    isolated: bool


ImageKind = Literal["none", "rootfs", "guest"]
"""What a backend boots a workspace from, which orchestration prepares before `create`:
nothing of the image cache, the environment's root filesystem (`CreateSpec.rootfs`), or a
microVM guest image built from it (`CreateSpec.guest_image`)."""


class GuestBootImage(Protocol):
    """What a microVM boots (roost.images.vm.build.GuestImage): an uncompressed ELF kernel, a
    gzip'd cpio initramfs, an ext4 root disk (shared: copy it), the kernel command line, and
    the vsock port the guest's agent listens on."""

    @property
    def kernel(self) -> Path: ...
    @property
    def initrd(self) -> Path: ...
    @property
    def rootfs(self) -> Path: ...
    @property
    def boot_args(self) -> str: ...
    @property
    def agent_vsock_port(self) -> int: ...


@dataclass(frozen=True)
class AgentPython:
    """The python3 that runs the agent inside the workspace: `command` is its argv prefix there
    (the image's own `/usr/bin/python3`, or roost's bundle started through its own loader); the
    bundle's host directory `bundle`, when set, is bound read-only at `bundle_mount`."""

    command: tuple[str, ...] = ("/usr/bin/python3",)
    bundle: str | None = None
    bundle_mount: str = "/opt/roost/python"


@dataclass(frozen=True)
class CreateSpec:
    """What a backend needs to know to boot one workspace, its image made ready (see `ImageKind`)."""

    ws_id: str
    env: str
    resources: dict[str, Any] = field(default_factory=dict)
    network_policy: str = "off"  # the policy's mode (`NetworkPolicy.mode`)
    rootfs: str | None = None
    guest_image: GuestBootImage | None = None
    # The workspace's CA (PEM) for its trust store, when it has a network: proxy-mode secrets are
    # put in place by roost's gateway inside TLS it ends with a certificate this CA signed.
    trusted_ca: bytes | None = None
    agent_python: AgentPython = field(default_factory=AgentPython)
    # A custom env's layers over `rootfs` (host paths, top first: overlay lowers), and the
    # variables its recipe set, which every process of the workspace starts with.
    layers: tuple[str, ...] = ()
    env_vars: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OfflineDisk:
    """Where a workspace's files lie on the host, for reading them while it is stopped (`workspace disk`).

    `image`: an ext4 image holding the guest's whole filesystem (a microVM's disk).
    `trees`: (guest directory, host directory) pairs, most specific first: a guest path is
    read from the first tree whose directory holds it. The workspace can write every one of
    them, so whoever reads them must never follow a link in them.
    """

    image: Path | None = None
    trees: tuple[tuple[str, Path], ...] = ()


BootT = TypeVar("BootT")


@dataclass(frozen=True)
class StoreAccess:
    """Where a workspace agent's content store keeps its packs on the host (`parts`, below the
    workspace directory; every one a directory the workspace can write). A fork links its parent's
    packs into each child's store (`workspace.shared_packs`): only where a workspace could change
    a pack anyway, as on the unisolated mock."""

    parts: tuple[str, ...]


@dataclass(frozen=True)
class HostUsage:
    """What a backend counts of a workspace from the host's side; a None field it does not count
    (the agent is asked, or it stays unknown). `source` names where the numbers come from."""

    source: str
    cpu_seconds: float | None = None
    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    pids: int | None = None
    disk_bytes: int | None = None
    # The limits it enforces, read back where it can (`vcpus`, `memory_bytes`, `pids`); absent: not known here.
    limits: dict[str, float] = field(default_factory=dict)


class Backend(Protocol[BootT]):
    """One way of isolating workspaces; `BootT` is what its boots leave in a workspace's record
    (a frozen value with `to_json()`): enough for any later process to find, reach, stop and
    boot the workspace again. Methods given None for it deal with a workspace that was never
    booted (a create that did not get that far) or, where said, one made here now."""

    name: str
    isolated: bool
    image_kind: ImageKind
    # None when roost's network gateway can hold this backend's workspaces to a network policy
    # (see `network_namespace_pid`); else why it cannot, said to a user who asked for one.
    network_refusal: str | None
    # None when proxy-mode secrets work here: roost's gateway holds the network and the workspace
    # trusts its CA (`CreateSpec.trusted_ca`); else why not, said to a user who asked for one.
    proxy_refusal: str | None

    def availability(self) -> Availability:
        """Probe the host; cheap enough for `roost doctor`."""
        ...

    def read_boot(self, stored: dict[str, Any]) -> BootT:
        """This backend's boot record from the JSON object its `to_json()` stored, or any older
        roost stored for it (unknown keys are ignored).

        Raises:
            ValueError, TypeError, BackendError (runtime_corrupt): `stored` is not one.
        """
        ...

    def create(self, ws_dir: Path, spec: CreateSpec) -> BootT:
        """Boot the workspace and its agent; return what its record must keep.

        On failure the backend cleans up what it started before raising.

        Raises:
            BackendError: the workspace could not be started.
        """
        ...

    def connect(self, ws_dir: Path, boot: BootT | None, *, timeout: float) -> AgentClient:
        """Open a handshaken connection to the workspace's agent.

        Raises:
            AgentError: agent_unreachable when it does not answer in time.
        """
        ...

    def health(self, ws_dir: Path, boot: BootT | None) -> str | None:
        """None when the workspace is alive, else why it is not."""
        ...

    def destroy(self, ws_dir: Path, ws_id: str, boot: BootT | None) -> None:
        """Stop every process of the workspace and free what it held outside its
        directory (cgroups, ...), found by the workspace's id where `boot` is None
        or out of date. Files are removed by the caller."""
        ...

    def discard_files(self, ws_dir: Path, boot: BootT | None) -> None:
        """After `destroy`, before the caller removes `ws_dir`: delete what the
        workspace wrote there that roost's user cannot delete directly (e.g.
        files owned by a normal user's subordinate ids).

        Raises:
            BackendError: cleanup_failed.
        """
        ...

    def protections(self, boot: BootT | None) -> tuple[Protection, ...]:
        """The layers isolating the workspace this boot record describes (None: a workspace
        made here now), active or not and why."""
        ...

    def rootfs_id_offset(self, boot: BootT | None) -> tuple[int, int]:
        """How far the env rootfs's owners must be shifted (uid, gid) for this workspace
        (`boot` None: a new one); (0, 0) uses the cached rootfs as it is."""
        ...

    def network_namespace_pid(self, boot: BootT | None) -> int | None:
        """A host pid inside the workspace's user and network namespaces (the gateway joins them
        there to set the workspace's network up), or None: not running, or a backend whose
        workspaces have no namespace of their own (`network_refusal` says why)."""
        ...

    def offline_disk(self, ws_dir: Path) -> OfflineDisk:
        """Where the files of the (stopped) workspace in `ws_dir` are on the host."""
        ...

    def content_store(self) -> StoreAccess | None:
        """Where its workspaces' content stores lie on the host, for a fork to share packs; None where
        the host cannot reach them (inside a VM's disk) or cannot keep a shared pack safe."""
        ...

    def usage(self, ws_dir: Path, boot: BootT) -> HostUsage:
        """What the running workspace uses, as far as the host counts it (`workspace stats`). A
        backend whose workspace is a VM of its own says so with `source` `vm`: its agent reports
        the whole system it runs in; any other gets the agent's process tree."""
        ...

    def stop(self, ws_dir: Path, boot: BootT) -> BootT:
        """Shut the workspace down cleanly, keeping /workspace and its disk; return what its record must keep."""
        ...

    def start(self, ws_dir: Path, spec: CreateSpec, boot: BootT) -> BootT:
        """Boot a stopped workspace again from what `stop` kept; return what its record must keep.

        Raises:
            BackendError: the workspace could not be started again.
        """
        ...
