"""Typed, frozen result values returned by the SDK and rendered by the front ends.

Every value has `to_dict()` giving the JSON shape the CLI's `--json` and the
MCP tools return, so the three faces agree by construction.

File names are bytes. In these values a name is a `str` as `os.fsdecode`
makes it (a byte that is not UTF-8 is a lone surrogate), ready for `os`
calls; `to_dict()` writes every name in its text form (as is, or C-quoted
as git quotes it: `roost.protocol.names`), which JSON carries losslessly.

This module imports only `roost.errors` (for `Remedy`) and
`roost.protocol.names` (a standard-library-only leaf: the one definition of
that text form, shared with the guest agent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from roost.errors import Remedy
from roost.protocol.names import as_bytes, to_text

__all__ = [
    "AttachedSecret",
    "DeleteResult",
    "DiffEntry",
    "DiffResult",
    "DirUsage",
    "DiskCheck",
    "DiskGrow",
    "DiskUsage",
    "DoctorCheck",
    "DoctorReport",
    "EnvInfo",
    "ExecRecord",
    "ExecResult",
    "ExportResult",
    "FileContent",
    "FileEntry",
    "FileListing",
    "ForkResult",
    "NetworkDecision",
    "NetworkInfo",
    "OutputSlice",
    "PatchResult",
    "PatchedFile",
    "PortInfo",
    "Protection",
    "PruneResult",
    "ResetResult",
    "ResourceLimits",
    "SecretInfo",
    "ServiceFailure",
    "ServiceInfo",
    "ShellInfo",
    "ShellOutput",
    "SkippedEntry",
    "SnapshotInfo",
    "SnapshotPage",
    "StartReport",
    "SyncResult",
    "WorkspaceInfo",
    "WorkspaceStats",
    "WriteResult",
]


# Field metadata: the field holds a file name (or None), written in its text form by `to_dict`.
NAME: dict[str, Any] = {"file_name": True}


def _plain(value: Any) -> Any:
    if isinstance(value, _Value):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class _Value:
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("file_name") and isinstance(value, str):
                data[f.name] = to_text(value)
            else:
                data[f.name] = _plain(value)
        return data


@dataclass(frozen=True)
class ExecResult(_Value):
    """The outcome of one command run to completion."""

    exit_code: int | None
    signal: str | None
    timed_out: bool
    duration_ms: float
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    exec_id: int | None = None
    # Why the exec is missing from the history (e.g. the disk is full); None once it was saved.
    history_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class ExecRecord(_Value):
    """One entry of a workspace's exec history (`workspace logs`)."""

    exec_id: int
    started_at: str
    command: str
    cwd: str = field(metadata=NAME)
    exit_code: int | None
    signal: str | None
    timed_out: bool
    duration_ms: float
    stdout_bytes: int
    stderr_bytes: int
    error: str | None = None


@dataclass(frozen=True)
class OutputSlice(_Value):
    """A window into a saved exec output stream."""

    exec_id: int
    stream: str
    offset: int
    length: int
    size: int
    eof: bool
    data: str


@dataclass(frozen=True)
class FileEntry(_Value):
    """One entry of a workspace directory. `type`: file, dir, symlink or other; `target` for a symlink."""

    path: str = field(metadata=NAME)
    name: str = field(metadata=NAME)
    type: str
    size: int
    mode: int
    mtime: float
    target: str | None = field(default=None, metadata=NAME)

    @property
    def path_bytes(self) -> bytes:
        """The path's bytes, exactly as the file system has them."""
        return as_bytes(self.path)


@dataclass(frozen=True)
class FileListing(_Value):
    """A directory's entries, in tree order. With a `limit`, a page: `next_cursor` continues it (None: done)."""

    path: str = field(metadata=NAME)
    entries: tuple[FileEntry, ...]
    truncated: bool
    next_cursor: str | None = None


@dataclass(frozen=True)
class FileContent:
    """Bytes read from a workspace file, with where they sit in it."""

    path: str
    size: int
    offset: int
    data: bytes = field(repr=False)
    eof: bool
    # How many of the file's bytes `data` holds (None: len(data)); more or fewer where a secret was redacted.
    read_bytes: int | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @property
    def length(self) -> int:
        """How many bytes of the file were read: the next read starts at `offset + length`."""
        return len(self.data) if self.read_bytes is None else self.read_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": to_text(self.path),
            "size": self.size,
            "offset": self.offset,
            "length": self.length,
            "eof": self.eof,
            "content": self.text,
        }


@dataclass(frozen=True)
class WriteResult(_Value):
    path: str = field(metadata=NAME)
    size: int
    mode: int


@dataclass(frozen=True)
class DeleteResult(_Value):
    path: str = field(metadata=NAME)
    type: str


@dataclass(frozen=True)
class SyncResult(_Value):
    dest: str = field(metadata=NAME)
    files: int
    dirs: int
    symlinks: int
    bytes: int
    deleted: int


@dataclass(frozen=True)
class PatchedFile(_Value):
    path: str = field(metadata=NAME)
    action: str
    hunks: int


@dataclass(frozen=True)
class PatchResult(_Value):
    files: tuple[PatchedFile, ...]
    dry_run: bool


@dataclass(frozen=True)
class Protection(_Value):
    """One layer of a workspace's isolation (user_namespace, seccomp, cgroup_memory, ...),
    whether it holds, and how or why not."""

    name: str
    active: bool
    detail: str


@dataclass(frozen=True)
class PortInfo(_Value):
    """A published port: `host_address:host_port` on the host reaches `guest_port` inside the
    workspace. `host_port` 0: any free port, chosen when the gateway binds it (none runs now)."""

    host_address: str
    host_port: int
    guest_port: int
    # The service that published it (None: the workspace's own).
    service: str | None = None


@dataclass(frozen=True)
class SecretInfo(_Value):
    """A secret of the host's store as anyone may see it: its name, the modes it may be used in, the
    hosts a proxy may send it to (and whether in request bodies too), and when it was set (never its value)."""

    name: str
    modes: tuple[str, ...]
    hosts: tuple[str, ...]
    set_at: str
    in_body: bool = False  # proxy mode also replaces the placeholder in request bodies


@dataclass(frozen=True)
class AttachedSecret(_Value):
    """A secret attached to a workspace: the modes it may be used in there, and for proxy mode the
    placeholder the workspace sees in its place (None otherwise). Never its value."""

    name: str
    modes: tuple[str, ...]
    placeholder: str | None = None


@dataclass(frozen=True)
class NetworkInfo(_Value):
    """What a workspace may reach, and whether roost's gateway is holding it to that now.

    `enforced` is False for a workspace whose policy is `off` with no ports (it has loopback
    only: nothing to hold), and for a stopped one; `detail` says how or why not.
    """

    policy: str
    allow: tuple[str, ...]
    ports: tuple[PortInfo, ...]
    enforced: bool
    detail: str


@dataclass(frozen=True)
class NetworkDecision(_Value):
    """One entry of a workspace's network decision log: a lookup or a connection, allowed or denied."""

    time: str
    name: str | None
    address: str
    port: int
    protocol: str
    verdict: str
    reason: str
    secret: str | None = None  # the proxy secret whose placeholder was seen (reason placeholder_to_unlisted_host)


@dataclass(frozen=True)
class ServiceFailure(_Value):
    """A service that did not come back with its workspace, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class StartReport(_Value):
    """What a workspace's last `start` or `restart` brought back, and what it could not.

    `services`: those kept with `--restart always|on-failure`, started again (probes passed);
    `services_failed`: those kept that did not come back; `shells_closed`: the shells open when it
    stopped, which never come back (None: unknown, its agent was already gone; see `shell list`).
    """

    at: str
    services: tuple[str, ...]
    services_failed: tuple[ServiceFailure, ...]
    shells_closed: tuple[str, ...] | None


@dataclass(frozen=True)
class WorkspaceInfo(_Value):
    """A workspace as users see it (no host paths)."""

    id: str
    name: str | None
    env: str
    backend: str
    isolated: bool
    state: str
    created_at: str
    labels: dict[str, str]
    ttl_seconds: int | None
    expires_at: str | None
    health: str | None = None
    exec_count: int = 0
    # Counts per state (`{"ready": 1}`; `{}`: none) for a running workspace, whichever call returns
    # it; None for one that is not running, or whose agent cannot say (`health` says why).
    services: dict[str, int] | None = None
    shells: dict[str, int] | None = None
    # What isolates this workspace; an inactive one says why it is not enforced.
    protections: tuple[Protection, ...] = ()
    # What gets an unhealthy or failed workspace going again; `hint` in `to_dict()`.
    remedy: Remedy | None = None
    # Its network policy and published ports (None: not known, as for a corrupt record).
    network: NetworkInfo | None = None
    # The secrets attached to it, by name, with their modes (never a value).
    secrets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The cache key of the env image it was made from: `sha256-<hex>` of a pulled image's manifest
    # digest (kept when its tag moves on), of a built tree's content; None: its backend needs none.
    image: str | None = None
    # Whole seconds until its TTL deletes it (0 once due); None: it has no TTL.
    expires_in_seconds: int | None = None
    # What its last start or restart brought back; None until it is started again after its create.
    last_start: StartReport | None = None
    # The workspace it was forked from (which may be deleted since), and the snapshot of it (None: the
    # parent's state at the fork); both None for a workspace that was not forked.
    parent: str | None = None
    forked_from: str | None = None

    @property
    def hint(self) -> str | None:
        """The remedy as an SDK call, or None when the workspace needs none (the CLI and MCP
        faces put their own spelling in `to_dict()`'s `hint`)."""
        return self.remedy.as_method_call() if self.remedy is not None else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "remedy":
                data[f.name] = _plain(value)
        data["hint"] = self.hint
        return data


@dataclass(frozen=True)
class ResourceLimits(_Value):
    """The limits a workspace runs under: what its backend enforces where it can read them back,
    else what was asked for at create; None: no limit (or none known)."""

    vcpus: float | None
    memory_bytes: int | None
    pids: int | None


@dataclass(frozen=True)
class WorkspaceStats(_Value):
    """What a running workspace uses now (`workspace stats`); a None field is not known in this
    workspace's view (`source`), never a guess."""

    id: str
    at: str
    # Where the numbers come from: `cgroup` (the sandbox's), `vm` (the guest's own), `process tree` (mock's).
    source: str
    cpu_seconds: float | None
    memory_bytes: int | None
    memory_peak_bytes: int | None
    pids: int | None
    workspace_disk_bytes: int | None
    disk_bytes: int | None
    limits: ResourceLimits


@dataclass(frozen=True)
class DoctorCheck(_Value):
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DoctorReport(_Value):
    version: str
    home: str
    default_backend: str
    backends: dict[str, DoctorCheck]
    checks: tuple[DoctorCheck, ...]
    # Per available backend: what isolates a workspace made on this host now, and why a layer would be off.
    protections: dict[str, tuple[Protection, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvInfo(_Value):
    """An environment (from the catalog, a custom env, or an image reference), and its cached image if there is one.

    `cached`: an image made from the catalog entry as it is now is here. `stale`: the cached
    image was made from an older package list; it is not used for new workspaces, and the
    next one (or `build_env`) makes a new image. The image fields describe whichever is cached.
    `interpreter` is the python3 that runs roost's agent in it: the image's own, or roost's
    bundle (`/opt/roost/python/bin/python3`) for an image without a usable one.
    """

    name: str
    description: str
    packages: tuple[str, ...]
    cached: bool
    stale: bool = False
    source: str | None = None
    digest: str | None = None
    key: str | None = None
    size_bytes: int | None = None
    created_at: str | None = None
    registry_reference: str | None = None
    interpreter: str | None = None
    # A custom env (built from a recipe): its parent env, its recipe, its layers' keys (bottom
    # first) and the variables every process of its workspaces starts with.
    parent: str | None = None
    recipe: dict[str, Any] | None = None
    layers: tuple[str, ...] = ()
    env_vars: dict[str, str] | None = None


@dataclass(frozen=True)
class PruneResult(_Value):
    removed: tuple[str, ...]
    in_use: tuple[str, ...]


@dataclass(frozen=True)
class ShellInfo(_Value):
    """A PTY shell session in a workspace. `state`: running, exited, closed or lost."""

    id: str
    command: tuple[str, ...]
    cwd: str = field(metadata=NAME)
    cols: int
    rows: int
    state: str
    created_at: str
    exit_code: int | None = None
    signal: str | None = None
    closed_at: str | None = None


@dataclass(frozen=True)
class ShellOutput(_Value):
    """Output read from a shell's ring buffer.

    `cursor` is where `data` starts (later than asked when `dropped` bytes
    were overwritten first); pass `next_cursor` to the next read. `ended_by`
    says what ended the read's wait (idle, pattern, command_done, timeout,
    shell_exited; None when it did not wait); `exit_code` is the shell's once
    it has exited, else, after command_done, the command's.
    """

    id: str
    data: str
    cursor: int
    next_cursor: int
    dropped: int
    end: int
    state: str
    exit_code: int | None
    plain: bool
    ended_by: str | None = None


@dataclass(frozen=True)
class ServiceInfo(_Value):
    """A named background service. `state`: starting, ready, failed, exited or stopped."""

    name: str
    command: tuple[str, ...]
    cwd: str = field(metadata=NAME)
    state: str
    restart: str
    probe: dict[str, Any] | None
    pid: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    reason: str | None = None
    started_at: str | None = None
    ready_at: str | None = None
    stopped_at: str | None = None
    restarts: int = 0
    log_tail: str | None = None
    # The ports it published (`service start --publish`), freed when it stops.
    ports: tuple[PortInfo, ...] = ()


@dataclass(frozen=True)
class DiffEntry(_Value):
    """One changed path: added, deleted, modified, type_changed or mode_changed."""

    path: str = field(metadata=NAME)
    change: str
    kind: str
    old_size: int | None
    new_size: int | None
    old_mode: int | None
    new_mode: int | None
    binary: bool
    old_target: str | None = field(default=None, metadata=NAME)
    new_target: str | None = field(default=None, metadata=NAME)

    @property
    def path_bytes(self) -> bytes:
        """The path's bytes, exactly as the file system has them."""
        return as_bytes(self.path)


@dataclass(frozen=True)
class DiffResult(_Value):
    """What changed in /workspace since the baseline or a snapshot, with the patch text.

    `counts` covers every change; `changes` and `patch` are this page's when a
    `limit` was given, and `next_cursor` continues it (None: nothing is left).
    """

    against: str
    changes: tuple[DiffEntry, ...]
    counts: dict[str, int]
    patch: str
    truncated: bool
    next_cursor: str | None = None


@dataclass(frozen=True)
class SkippedEntry(_Value):
    """A workspace entry an export left out, and why.

    `reason` is stable: `absolute_symlink`, `symlink_escapes`, `special_file`,
    `hardlink_outside`, `unsafe_name`, `duplicate`, `parent_not_directory` or
    `parent_skipped`; `detail` says it in words.
    """

    path: str = field(metadata=NAME)
    reason: str
    detail: str


@dataclass(frozen=True)
class ExportResult(_Value):
    """What an export wrote: `files` and `bytes` as written on the host.

    `skipped` lists (up to a bound) what was left out by the host-crossing
    rules; `skipped_count` counts all of it.
    """

    path: str = field(metadata=NAME)
    format: str
    files: int
    bytes: int
    skipped: tuple[SkippedEntry, ...] = ()
    skipped_count: int = 0


@dataclass(frozen=True)
class SnapshotInfo(_Value):
    name: str
    created_at: str
    files: int
    size_bytes: int
    stored_bytes: int | None = None


@dataclass(frozen=True)
class SnapshotPage(_Value):
    """Some of a workspace's snapshots, baseline first; `next_cursor` continues the list (None: done)."""

    snapshots: tuple[SnapshotInfo, ...]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ResetResult(_Value):
    """What a reset did: the snapshot it restored, files rewritten and removed, what it stopped first."""

    snapshot: str
    restored: int
    removed: int
    stopped_services: tuple[str, ...]
    closed_shells: tuple[str, ...]


@dataclass(frozen=True)
class DirUsage(_Value):
    """One directory of a stopped workspace's disk and the bytes it and all below it take."""

    path: str = field(metadata=NAME)
    bytes: int
    files: int


@dataclass(frozen=True)
class DiskUsage(_Value):
    """What fills a stopped workspace's disk under `path`: its total and its biggest directories (`top`,
    largest first, `path` itself among them), counted as `du` does (allocated bytes, a sparse file's holes free)."""

    path: str = field(metadata=NAME)
    total_bytes: int
    files: int
    dirs: int
    top: tuple[DirUsage, ...]


@dataclass(frozen=True)
class DiskCheck(_Value):
    """A filesystem check of a stopped workspace's disk: `clean` once nothing is wrong (after `repaired`,
    when a repair was asked for and made); `report` is the checker's own output."""

    clean: bool
    repaired: bool
    exit_code: int
    report: str


@dataclass(frozen=True)
class DiskGrow(_Value):
    """A stopped workspace's disk grown from `old_size_bytes` to `size_bytes` (image and filesystem)."""

    old_size_bytes: int
    size_bytes: int


@dataclass(frozen=True)
class ForkResult(_Value):
    """What `workspace fork` made: `workspaces`, the children in order, each holding the parent's
    /workspace as `snapshot` held it (None: as it was at the fork) with that as its baseline.

    What a child does not take from its parent, by design: the parent's open shells (running
    processes: `shells_not_copied` counts them), its published ports (a host port serves one
    workspace: `ports_not_copied`) and its secrets unless named again (`secrets_not_copied`).
    Each child's `last_start` says which kept services it started.
    """

    parent: str
    snapshot: str | None
    files: int
    size_bytes: int
    workspaces: tuple[WorkspaceInfo, ...]
    shells_not_copied: int = 0
    ports_not_copied: int = 0
    secrets_not_copied: tuple[str, ...] = ()
