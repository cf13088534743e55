"""Workspace handles of the SDK: `Workspace` and its `files`, `shells`, `services` and `snapshots`.

Models over an API, as docker-py's are: each handle is bound once to its
workspace (`BoundWorkspace`: an engine and an id) and each method is one
call into `roost.workspace` (the exec history's, into `roost.store.history`),
with the workspace's record read once per call. `roost.client` hands them out.

Imports: arguments, confinement, errors, models, store, workspace, the bound workspace, the disk, secret and
shell handles and the standard library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import overload

from roost import arguments
from roost._bound import BoundWorkspace, native_path
from roost._disk_handles import WorkspaceDisk
from roost._secret_handles import WorkspaceSecrets
from roost._shell_handles import WorkspaceShells
from roost.confinement import HostArg
from roost.errors import InvalidArgument, RoostError
from roost.images.build import ProgressFn
from roost.models import (
    DeleteResult,
    DiffEntry,
    DiffResult,
    ExecRecord,
    ExecResult,
    ExportResult,
    FileContent,
    FileEntry,
    FileListing,
    ForkResult,
    NetworkDecision,
    NetworkInfo,
    OutputSlice,
    PatchResult,
    ResetResult,
    ServiceInfo,
    SnapshotInfo,
    SnapshotPage,
    SyncResult,
    WorkspaceInfo,
    WorkspaceStats,
    WriteResult,
)
from roost.store.history import ExecHistory
from roost.store.locks import HeldLock
from roost.workspace import copying, diffs, forking, lifecycle, network, operations, power, services, snapshots, stats
from roost.workspace.diffs import DEFAULT_DIFF_BYTES
from roost.workspace.engine import Engine
from roost.workspace.network_request import network_request
from roost.workspace.operations import DEFAULT_MAX_OUTPUT, ExecSpec, OutputCallback
from roost.workspace.readiness import Readiness
from roost.workspace.secrets import SecretUses
from roost.workspace.streamed import Streamed

__all__ = [
    "Forked",
    "Readiness",
    "Streamed",
    "Workspace",
    "WorkspaceDisk",
    "WorkspaceFiles",
    "WorkspaceNetwork",
    "WorkspaceSecrets",
    "WorkspaceServices",
    "WorkspaceShells",
    "WorkspaceSnapshots",
]


# The decision log keeps about 1 MiB (a few thousand decisions); a limit past that asks for all of it.
MAX_DECISIONS = 100_000


class WorkspaceFiles:
    """File operations of one workspace (`ws.files`)."""

    def __init__(self, bound: BoundWorkspace) -> None:
        self._bound = bound

    def list(
        self,
        path: str | bytes = "/workspace",
        *,
        recursive: bool = False,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> FileListing:
        """The entries of `path` in tree order (a parent before what it holds, siblings by the bytes of their names).

        Without `limit`, all of them. With it, one page: pass its
        `next_cursor` as `cursor` for the next (None once nothing is left).
        For a listing too large to hold, iterate `iter` instead.

        Raises:
            RoostError: path_not_found, path_outside_workspace, invalid_argument (a bad cursor or limit).
        """
        return self._bound(operations.list_files, path, recursive, cursor=cursor, limit=limit)

    def iter(self, path: str | bytes = "/workspace", *, recursive: bool = False) -> Streamed[FileEntry]:
        """Every entry of `path`, in the order of `list`, each as it arrives (bounded memory at any size).

        Stop early with `close()` or a `with` block; the workspace stops walking too.

        Raises:
            RoostError: path_not_found, path_outside_workspace, when iterated.
        """
        return self._bound(operations.iter_files, path, recursive)

    def stat(self, path: str | bytes) -> FileEntry:
        return self._bound(operations.stat_file, path)

    def read(self, path: str | bytes, *, offset: int = 0, max_bytes: int | None = None) -> FileContent:
        """Read up to `max_bytes` (default 1 MiB, limit 8 MiB) from `offset`.

        Raises:
            RoostError: path_not_found, path_outside_workspace, read_too_large, is_a_directory.
        """
        return self._bound(operations.read_file, path, offset, max_bytes)

    def write(self, path: str | bytes, data: bytes | str, *, mode: int | None = None) -> WriteResult:
        """Write a file atomically, creating parent directories."""
        payload = data.encode() if isinstance(data, str) else data
        return self._bound(operations.write_file, path, payload, mode)

    def delete(self, path: str | bytes, *, recursive: bool = False) -> DeleteResult:
        return self._bound(operations.delete_file, path, recursive)


class WorkspaceServices:
    """Named background services of one workspace (`ws.services`)."""

    def __init__(self, bound: BoundWorkspace) -> None:
        self._bound = bound

    def start(
        self,
        name: str,
        command: str | Sequence[str],
        *,
        cwd: str | bytes | None = None,
        env: dict[str, str] | None = None,
        ready: Readiness | None = None,
        restart: str = "no",
        publish: Sequence[str | int] | None = None,
        secret_env: SecretUses = (),
        secret_files: SecretUses = (),
    ) -> ServiceInfo:
        """Start a service and wait until its readiness probe passes.

        `secret_env`/`secret_files` give it attached secrets, as for `Workspace.exec`; the agent keeps
        them in memory (and a tmpfs file) for its restarts until it stops.

        The result's `state` is `ready`, or `failed` with `reason` and `log_tail`. `publish`
        serves guest ports on the host's loopback (`"8000"`, `"18000:8000"`) until the
        service is stopped; the result's `ports` say which host ports.

        Raises:
            RoostError: service_exists (same name still running), invalid_argument,
                network_unsupported, port_in_use.
        """
        return self._bound(
            services.start_service,
            name,
            command,
            cwd=native_path(cwd),
            env=env,
            ready=ready,
            restart=restart,
            publish=publish,
            secret_env=secret_env,
            secret_files=secret_files,
        )

    def list(self) -> list[ServiceInfo]:
        return self._bound(services.list_services)

    def status(self, name: str) -> ServiceInfo:
        """Raises: RoostError: service_not_found."""
        return self._bound(services.service_status, name)

    def logs(self, name: str, *, stream: str = "both", tail: int | None = None) -> str:
        """The service's captured output (`stream`: stdout, stderr or both), last `tail` lines."""
        return self._bound(services.service_logs, name, stream=stream, tail=tail)

    def follow(
        self,
        name: str,
        on_output: Callable[[bytes], None],
        stop: threading.Event,
        *,
        stream: str = "both",
        tail: int | None = None,
    ) -> None:
        """Stream the log to `on_output` until `stop` is set or the service ends."""
        self._bound(services.follow_logs, name, on_output, stop, stream=stream, tail=tail)

    def stop(self, name: str, *, timeout: float | None = None) -> ServiceInfo:
        """TERM the service's process group, KILL after `timeout` (default 10 s); a dead one stops at once."""
        return self._bound(services.stop_service, name, timeout=timeout)


class WorkspaceNetwork:
    """The network policy, published ports and decision log of one workspace (`ws.network`)."""

    def __init__(self, bound: BoundWorkspace) -> None:
        self._bound = bound

    def show(self) -> NetworkInfo:
        """The policy, its allow-list, the published ports, and whether roost's gateway holds them now."""
        return network.network_view(self._bound.record())

    def set(
        self,
        policy: str | None = None,
        *,
        allow: Sequence[str] | None = None,
        publish: Sequence[str | int] | None = None,
    ) -> NetworkInfo:
        """Change the policy and the workspace's own published ports, live: no restart.

        `policy` None keeps the mode; `allow` None keeps the allow-list while the mode stays
        `allowlist` (any other mode has none); `publish` None keeps the workspace's own ports,
        a list (empty too) replaces them. Services' ports are theirs (`services.start`).
        A stopped workspace gets the change at its next start.

        Raises:
            RoostError: invalid_argument (nothing changes), network_unsupported, port_in_use,
                network_unavailable.
        """
        record = self._bound.record()
        mode = record.network_policy.mode if policy is None else policy
        if allow is None and mode == "allowlist" and record.network_policy.mode == "allowlist":
            allow = [entry.text for entry in record.network_policy.allow]
        request = network_request(mode, allow, publish)
        own = None if publish is None else request.ports
        return network.network_view(network.set_network(self._bound.engine, self._bound.id, request.policy, own))

    def log(self, *, denied: bool = False, limit: int | None = None) -> list[NetworkDecision]:
        """The decisions on the workspace's lookups and connections, oldest first (the last `limit`).

        Raises:
            RoostError: invalid_argument for a bad limit.
        """
        count = arguments.optional_count(limit, "limit", MAX_DECISIONS, unit="decisions")
        found = self._bound(network.decisions, denied=denied)
        return found[-count:] if count else found

    def follow(
        self, on_decision: Callable[[NetworkDecision], None], stop: threading.Event, *, denied: bool = False
    ) -> None:
        """Every decision kept, then each new one as it is made, to `on_decision` until `stop` is set."""
        self._bound(network.follow_decisions, on_decision, stop, denied=denied)


class WorkspaceSnapshots:
    """Named snapshots of /workspace (`ws.snapshots`); `baseline` is taken at create."""

    def __init__(self, bound: BoundWorkspace) -> None:
        self._bound = bound

    def create(self, name: str) -> SnapshotInfo:
        """Checkpoint /workspace; unchanged content is stored once, so this is cheap.

        Raises:
            RoostError: snapshot_exists, invalid_argument.
        """
        return self._bound(snapshots.create_snapshot, name)

    def list(self) -> list[SnapshotInfo]:
        """Every snapshot, the baseline first, then by creation time."""
        return self._bound(snapshots.list_snapshots)

    def iter(self) -> Streamed[SnapshotInfo]:
        """The snapshots in the order of `list`, each as it arrives."""
        return self._bound(snapshots.iter_snapshots)

    def page(self, *, cursor: str | None = None, limit: int | None = None) -> SnapshotPage:
        """Up to `limit` snapshots after `cursor`; pass `next_cursor` on for the next page (None: done).

        Raises:
            RoostError: invalid_argument (a bad cursor or limit).
        """
        return self._bound(snapshots.snapshot_page, cursor=cursor, limit=limit)

    def delete(self, name: str) -> None:
        """Raises: RoostError: snapshot_not_found; invalid_argument for the baseline."""
        self._bound(snapshots.delete_snapshot, name)


class Workspace:
    """A handle on one workspace. Cheap: it holds only the id (and, for a `run`'s, its owner lock)."""

    def __init__(self, engine: Engine, ws_id: str, *, ephemeral: bool = False, owner: HeldLock | None = None) -> None:
        self._engine = engine
        self._bound = BoundWorkspace(engine, ws_id)
        self.id = ws_id
        self.ephemeral = ephemeral
        self._owner = owner
        self.files = WorkspaceFiles(self._bound)
        self.shells = WorkspaceShells(self._bound)
        self.services = WorkspaceServices(self._bound)
        self.disk = WorkspaceDisk(self._bound)
        self.snapshots = WorkspaceSnapshots(self._bound)
        self.network = WorkspaceNetwork(self._bound)
        self.secrets = WorkspaceSecrets(engine, ws_id)

    def info(self) -> WorkspaceInfo:
        """Current state, probing the agent's health, with service and shell counts per state."""
        return self._bound(lifecycle.info)

    def exec(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        max_output_bytes: int | None = DEFAULT_MAX_OUTPUT,
        on_output: OutputCallback | None = None,
        secret_env: SecretUses = (),
        secret_files: SecretUses = (),
        cancel: threading.Event | None = None,
    ) -> ExecResult:
        """Run a command to completion: a string runs under bash -c, a list runs as argv.

        `cancel`: an event another thread may set to stop the command: its whole process group is
        killed within a moment and this raises `cancelled` (the history keeps the entry). roost
        only reads the event, so one may serve several calls.

        `secret_env`: secrets attached to the workspace that this command alone gets in its environment,
        `"NAME"` (in variable NAME) or `"NAME=VAR"`; a proxy-mode secret gives its placeholder.
        `secret_files`: the same as 0400 files on a tmpfs, removed when it ends, their paths in
        `ROOST_SECRET_FILE_NAME` (or VAR). Every output shows attached secrets as `[redacted:NAME]`.

        Raises:
            RoostError: command_not_found, path_not_found (cwd), agent errors; secret_not_found,
                secret_mode_unsupported before the command starts; cancelled once `cancel` is set.
        """
        spec = ExecSpec(
            command=command,
            cwd=native_path(cwd),
            env=env or {},
            timeout=timeout,
            stdin=stdin.encode() if isinstance(stdin, str) else stdin,
            max_output_bytes=max_output_bytes,
            secret_env=secret_env,
            secret_files=secret_files,
        )
        return self._bound(operations.run_exec, spec, on_output, cancel)

    def sync_push(self, source: HostArg, *, dest: str | bytes = "/workspace", delete: bool = False) -> SyncResult:
        """Copy a host directory (or tar file) into the workspace.

        The source is read without following any symlink inside it (links are
        copied as links); a `ConfinedPath` is also opened without following one
        on the way from its root.
        """
        return self._bound(operations.sync_push, arguments.host_path(source, "source"), dest, delete)

    def copy_in(self, source: HostArg, dest: str | bytes, *, progress: ProgressFn | None = None) -> SyncResult:
        """Copy a host file or directory to `dest`, or into `dest` when it is an existing directory (`docker cp`).

        The host side is read without following a link; the agent refuses links that leave the copy.
        `progress(step, bytes_sent, 0)` is called as the bytes go.

        Raises:
            RoostError: seed_not_found, not_a_file, path_not_allowed, archive_rejected, path_outside_workspace.
        """
        return self._bound(copying.copy_in, arguments.host_path(source, "source"), dest, progress)

    def copy_out(self, path: str | bytes, output: HostArg) -> ExportResult:
        """Copy a file or directory to a new host path, or into `output` when it is an existing host directory.

        The same rules as `export` (format dir) hold: no setuid/setgid/sticky or group/other write bits,
        links leading out and special files left out (listed in `skipped`), nothing written over.

        Raises:
            RoostError: output_exists, output_dir_missing, path_not_allowed, export_skipped, path_not_found.
        """
        return self._bound(copying.copy_out, path, arguments.host_path(output, "output"))

    def apply_patch(self, patch: str | bytes, *, dry_run: bool = False) -> PatchResult:
        """Apply a unified diff to /workspace, all hunks or none (bytes: names in it are taken as bytes)."""
        return self._bound(operations.apply_patch, patch, dry_run)

    def diff(
        self,
        *,
        against: str = "baseline",
        paths: Sequence[str | bytes] = (),
        stat: bool = False,
        max_bytes: int | None = DEFAULT_DIFF_BYTES,
        cursor: str | None = None,
        limit: int | None = None,
        exclude: Sequence[str] = (),
        gitignore: bool = False,
        include_git_dir: bool | None = None,
    ) -> DiffResult:
        """What changed since the baseline (or a snapshot): a summary and a git-style patch.

        `max_bytes` caps the patch text (None: no cap). Without `limit`, every
        change is listed and the patch is cut where the cap falls. With it, one
        page of at most `limit` changes that ends before a patch that no longer
        fits; pass its `next_cursor` as `cursor` for the next (None: done), with
        the same ignore rules.

        `exclude` takes gitignore patterns relative to /workspace (`"node_modules/"`,
        `"*.log"`, `"/build"`, `"!keep.log"`); `gitignore` also honours the workspace's
        `.gitignore` files and `.git/info/exclude` as git does. Excluded
        directories are not scanned at all. `.git` itself is left out under
        `gitignore` unless `include_git_dir` is True.

        Raises:
            RoostError: snapshot_not_found, path_outside_workspace; invalid_argument (a bad
                cursor, limit or pattern).
        """
        rules = diffs.ignore_rules(exclude, gitignore, include_git_dir)
        args = diffs.diff_args(
            against=against, paths=paths, stat=stat, max_bytes=max_bytes, cursor=cursor, limit=limit, ignore=rules
        )
        return self._bound(diffs.diff, args)

    def diff_entries(
        self,
        *,
        against: str = "baseline",
        paths: Sequence[str | bytes] = (),
        exclude: Sequence[str] = (),
        gitignore: bool = False,
        include_git_dir: bool | None = None,
    ) -> Streamed[DiffEntry]:
        """Each changed path (no patch text) in tree order, as it arrives: any number in bounded memory.

        `exclude`, `gitignore` and `include_git_dir` leave paths out as for `diff`.

        Raises:
            RoostError: snapshot_not_found, path_outside_workspace, when iterated; invalid_argument at once.
        """
        rules = diffs.ignore_rules(exclude, gitignore, include_git_dir)
        args = diffs.diff_args(against=against, paths=paths, stat=True, ignore=rules)
        return self._bound(diffs.stream_entries, args)

    def diff_stream(
        self,
        *,
        against: str = "baseline",
        paths: Sequence[str | bytes] = (),
        max_bytes: int | None = None,
        exclude: Sequence[str] = (),
        gitignore: bool = False,
        include_git_dir: bool | None = None,
    ) -> Streamed[DiffEntry | str]:
        """The diff as it arrives: each change's `DiffEntry`, then its patch text in `str` pieces.

        Joining the pieces gives the patch `diff` returns; `summary` then holds
        `against`, `counts` and `truncated`. `exclude`, `gitignore` and
        `include_git_dir` leave paths out as for `diff`.

        Raises:
            RoostError: as `diff_entries`.
        """
        rules = diffs.ignore_rules(exclude, gitignore, include_git_dir)
        args = diffs.diff_args(against=against, paths=paths, max_bytes=max_bytes, ignore=rules)
        return self._bound(diffs.stream_diff, args)

    def export(
        self,
        path: str | bytes,
        output: HostArg,
        *,
        format: str = "dir",
        exclude: Sequence[str] = (),
        gitignore: bool = False,
        include_git_dir: bool | None = None,
    ) -> ExportResult:
        """Write `path` to a new host path as files (`dir`), a `tar`, or its diff as a `patch`.

        What crosses is checked on the host: setuid/setgid/sticky and
        group/other write bits are stripped, and symlinks that are absolute or
        lead out of the exported tree, special files and hard links to
        anything outside it are left out and listed in `ExportResult.skipped`.
        `exclude` and `gitignore` leave paths out as for `diff`; `.git` is left
        out of a patch (and under `gitignore`) unless `include_git_dir` is True.

        Raises:
            RoostError: output_exists, output_dir_missing, path_not_allowed, export_skipped,
                path_not_found, path_outside_workspace, path_excluded (the rules exclude `path`
                itself; dir and tar), invalid_argument for a bad pattern.
        """
        rules = diffs.ignore_rules(exclude, gitignore, include_git_dir, fmt=format)
        where = arguments.host_path(output, "output")
        return self._bound(snapshots.export, path, where, format, rules)

    def reset(self, *, snapshot: str = "baseline") -> ResetResult:
        """Restore /workspace exactly to a snapshot (default: the baseline), stopping
        services and closing shells first; the result names them."""
        return self._bound(snapshots.reset, snapshot)

    def stats(self) -> WorkspaceStats:
        """What the running workspace uses now: CPU time, memory now and at its peak, processes, disk
        under /workspace and in total, with the limits it runs under. A field its backend cannot
        know is None (see `WorkspaceStats.source`).

        Raises:
            RoostError: workspace_stopped, workspace_unhealthy (restart it).
        """
        return self._bound(stats.stats)

    def logs(self, limit: int | None = None) -> list[ExecRecord]:
        """The exec history, oldest first (the newest 100 are kept)."""
        self._bound.record()  # it must exist
        return ExecHistory(self._engine.store.dir(self.id)).entries(limit)

    def follow_logs(
        self,
        on_exec: Callable[[ExecRecord], None],
        stop: threading.Event,
        *,
        limit: int | None = None,
        poll_seconds: float = 0.25,
    ) -> None:
        """The exec history (the newest `limit`), then each exec as it finishes, to `on_exec` until `stop` is set.

        An exec enters the history when it ends, so a running exec shows up once it is done.
        """
        history = ExecHistory(self._engine.store.dir(self.id))
        self._bound.record()  # it must exist
        shown = 0
        for entry in history.entries(limit):
            on_exec(entry)
            shown = entry.exec_id
        while not stop.wait(poll_seconds):
            for entry in history.entries(None):
                if entry.exec_id > shown:
                    on_exec(entry)
                    shown = entry.exec_id

    def exec_output(
        self, exec_id: int, stream: str = "stdout", *, offset: int = 0, max_bytes: int = 65536
    ) -> OutputSlice:
        """A window of a past exec's saved output."""
        self._bound.record()  # it must exist
        return ExecHistory(self._engine.store.dir(self.id)).read_output(exec_id, stream, offset, max_bytes)

    def update(
        self,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        remove_labels: Sequence[str] = (),
        ttl_seconds: int | None = None,
        clear_ttl: bool = False,
    ) -> WorkspaceInfo:
        """Rename, relabel, set a new TTL from now, or clear the TTL.

        Raises:
            RoostError: invalid_argument, name_taken, workspace_busy.
        """
        if isinstance(remove_labels, str):
            raise InvalidArgument("remove_labels must be a list of label keys", hint=f"e.g. [{remove_labels!r}]")
        record = lifecycle.update(
            self._engine,
            self.id,
            name=name,
            labels=labels,
            remove_labels=tuple(remove_labels),
            ttl_seconds=ttl_seconds,
            clear_ttl=clear_ttl,
        )
        return lifecycle.info(self._engine, record, probe=False)

    def stop(self) -> WorkspaceInfo:
        """Shut the workspace down (services stop, shells close), keeping /workspace and its disk.

        An unhealthy workspace stops too: every process it left is killed.

        Raises:
            RoostError: workspace_failed, workspace_busy.
        """
        return lifecycle.info(self._engine, power.stop(self._engine, self.id), probe=False)

    def start(self) -> WorkspaceInfo:
        """Boot a stopped workspace again; /workspace is as it was left.

        Services started with `restart="always"` or `"on-failure"` (and not stopped since) start again,
        probes and all; shells do not. The result's `last_start` says which came back, which did not
        and why (a failed one does not fail the start), and which shells were closed.

        Raises:
            RoostError: workspace_not_stopped, image_missing, or the backend's boot failure.
        """
        return lifecycle.info(self._engine, power.start(self._engine, self.id))

    def restart(self) -> WorkspaceInfo:
        """Stop whatever is left of the workspace, then start it: the way out of `unhealthy`.

        Works from running, unhealthy and stopped; /workspace is kept, and so are the services
        kept by their restart policy (see `start`); shells are not.

        Raises:
            RoostError: workspace_failed, workspace_busy, image_missing, or the backend's boot failure.
        """
        return lifecycle.info(self._engine, power.restart(self._engine, self.id))

    def delete(self, *, force: bool = False) -> None:
        """Stop every process of the workspace and remove all its files."""
        lifecycle.delete(self._engine, self.id, force=force)

    def fork(
        self,
        count: int = 1,
        *,
        snapshot: str | None = None,
        name_prefix: str | None = None,
        labels: dict[str, str] | None = None,
        secrets: Sequence[str] = (),
        progress: ProgressFn | None = None,
    ) -> Forked:
        """Make `count` (1-100) new workspaces, each holding this one's /workspace as it is now (or as
        `snapshot` holds it), with that as its baseline; all of them, or none on a failure.

        Each child has this workspace's backend, env, limits, TTL and network policy, and its own id,
        hostname, machine-id and keys; it starts the services kept by a restart policy. Not copied:
        open shells, published ports, and secrets unless named again in `secrets`. Children are named
        `name_prefix-1` .. `name_prefix-N` when a prefix is given, and carry `labels`. Deleting this
        workspace, or the snapshot, never touches a child. Handles are not ephemeral.
        `progress(step, made, count)` hears the copy of the tree begin, then each child made.

        Raises:
            RoostError: invalid_argument, name_taken, snapshot_not_found, secret_not_found,
                workspace_stopped before anything is made; disk_full or a child's create failure.
        """
        options = forking.ForkOptions(
            count=count,
            snapshot=snapshot,
            name_prefix=name_prefix,
            labels=labels or {},
            secrets=secrets,
            progress=progress,
        )
        result = self._bound(forking.fork, options)
        return Forked(result, [Workspace(self._engine, child.id) for child in result.workspaces])

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.ephemeral:
                try:
                    self.delete(force=True)
                except RoostError:
                    if exc is None:
                        raise
        finally:
            if self._owner is not None:
                self._owner.release()
                self._owner = None

    def __repr__(self) -> str:
        return f"Workspace({self.id!r})"


class Forked(Sequence[Workspace]):
    """What `Workspace.fork` made: the children's handles, in order (index, iterate, `len`), and
    `result`, which says what each child started and what no child took (shells, ports, secrets)."""

    def __init__(self, result: ForkResult, workspaces: list[Workspace]) -> None:
        self.result = result
        self.workspaces = workspaces

    @overload
    def __getitem__(self, index: int) -> Workspace: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Workspace]: ...

    def __getitem__(self, index: int | slice) -> Workspace | Sequence[Workspace]:
        return self.workspaces[index]

    def __len__(self) -> int:
        return len(self.workspaces)

    def __repr__(self) -> str:
        return f"Forked(parent={self.result.parent!r}, workspaces={self.workspaces!r})"
