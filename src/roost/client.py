"""The roost SDK: `Roost` and its `Workspace` handles. The only thing front ends call.

Methods mirror the CLI one to one. Each is a thin call into
`roost.workspace`; results are frozen models with `to_dict()`, failures are
`RoostError`s with a stable `code`.

    from roost import Roost

    with Roost() as roost:
        with roost.create_workspace("debian:12", seed_path="./repo") as ws:
            print(ws.exec("git log --oneline | head -3").stdout)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from roost.config import DEFAULT_ENV, default_home
from roost.errors import RoostError
from roost.images.build import ProgressFn
from roost.models import (
    DeleteResult,
    DoctorReport,
    EnvInfo,
    ExecRecord,
    ExecResult,
    FileContent,
    FileEntry,
    FileListing,
    OutputSlice,
    PatchResult,
    PruneResult,
    ShellInfo,
    ShellOutput,
    SyncResult,
    WorkspaceInfo,
    WriteResult,
)
from roost.store.history import ExecHistory
from roost.store.records import WorkspaceRecord
from roost.workspace import doctor, envs, lifecycle, operations, shells
from roost.workspace.operations import DEFAULT_MAX_OUTPUT, ExecSpec, OutputCallback
from roost.workspace.runtime import Runtime

__all__ = ["Roost", "Workspace", "WorkspaceFiles", "WorkspaceShells"]


class Roost:
    """Entry point of the SDK: creates, finds and runs workspaces.

    Args:
        home: state directory (default `$ROOST_HOME` or ~/.local/share/roost).
        backend: `firecracker`, `sandbox` or `mock` (default: best available,
            or `$ROOST_BACKEND`).
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, backend: str | None = None) -> None:
        from roost.config import requested_backend

        self._rt = Runtime(Path(home) if home is not None else default_home(), backend or requested_backend())
        self.warnings: list[str] = []

    @property
    def home(self) -> Path:
        return self._rt.home

    def create_workspace(
        self,
        env: str = DEFAULT_ENV,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        seed_path: str | os.PathLike[str] | None = None,
        ttl_seconds: int | None = None,
        backend: str | None = None,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        network_policy: str = "off",
        ephemeral: bool = True,
        progress: ProgressFn | None = None,
    ) -> Workspace:
        """Create a workspace and wait until its agent answers.

        With `ephemeral` (the default), using the handle as a context manager
        deletes the workspace on exit. `progress(step, done, total)` hears
        about image pulls and builds, which the first create of an env may need.

        Raises:
            RoostError: env_not_found, seed_not_found, name_taken, invalid_argument,
                backend_unavailable, or a backend start failure.
        """
        options = lifecycle.CreateOptions(
            env=env,
            name=name,
            labels=dict(labels or {}),
            seed_path=os.fspath(seed_path) if seed_path is not None else None,
            ttl_seconds=ttl_seconds,
            backend=backend,
            vcpus=vcpus,
            mem_mib=mem_mib,
            network_policy=network_policy,
            progress=progress,
        )
        lifecycle.reap_expired(self._rt)
        record, warning = lifecycle.create(self._rt, options)
        if warning:
            self.warnings.append(warning)
        return Workspace(self._rt, record.id, ephemeral=ephemeral)

    def workspace(self, ref: str) -> Workspace:
        """A handle on an existing workspace by id, unique id prefix or name.

        Raises:
            NotFound: workspace_not_found.
            ConflictError: workspace_ambiguous.
        """
        return Workspace(self._rt, self._rt.store.resolve(ref), ephemeral=False)

    def list_workspaces(self) -> list[WorkspaceInfo]:
        """Every workspace (expired ones are reaped first).

        A workspace whose record cannot be read is listed with state
        `corrupt` and the way out in `health`.
        """
        lifecycle.reap_expired(self._rt)
        return [
            lifecycle.info(self._rt, r, probe=True) if isinstance(r, WorkspaceRecord) else lifecycle.corrupt_info(r)
            for r in lifecycle.list_records(self._rt)
        ]

    def run(
        self,
        env: str,
        command: str | Sequence[str],
        *,
        backend: str | None = None,
        timeout: float | None = None,
        cwd: str | None = None,
        env_vars: dict[str, str] | None = None,
        seed_path: str | os.PathLike[str] | None = None,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        network_policy: str = "off",
        on_output: OutputCallback | None = None,
        progress: ProgressFn | None = None,
    ) -> ExecResult:
        """Create a workspace, run one command, delete the workspace (even on failure or Ctrl-C)."""
        workspace = self.create_workspace(
            env,
            backend=backend,
            seed_path=seed_path,
            vcpus=vcpus,
            mem_mib=mem_mib,
            network_policy=network_policy,
            progress=progress,
        )
        with workspace:
            return workspace.exec(command, cwd=cwd, env=env_vars, timeout=timeout, on_output=on_output)

    def delete_workspace(self, ref: str, *, force: bool = False) -> str:
        """Delete a workspace by reference and return its id.

        With `force`, also removes a workspace whose record is corrupt or
        missing (an interrupted create), given by its exact id.

        Raises:
            NotFound: workspace_not_found.
            WorkspaceError: workspace_corrupt, without force.
        """
        return lifecycle.delete(self._rt, ref, force=force)

    def envs(self) -> list[EnvInfo]:
        """Every environment in the catalog, with its cached image if any."""
        return envs.list_envs(self._rt)

    def inspect_env(self, name: str) -> EnvInfo:
        """One environment and its cached image.

        Raises:
            NotFound: env_not_found.
        """
        return envs.inspect_env(self._rt, name)

    def pull_env(self, name: str, *, registry: str | None = None, progress: ProgressFn | None = None) -> EnvInfo:
        """Pull an environment's image from a registry (every blob sha256-verified).

        Raises:
            ImageError: no_registry, registry_unreachable, image_not_found, digest_mismatch.
        """
        return envs.pull(self._rt, name, registry, progress)

    def build_env(self, name: str, *, progress: ProgressFn | None = None) -> EnvInfo:
        """Build an environment locally with mmdebstrap/debootstrap from apt's mirror.

        Raises:
            ImageError: build_failed, disk_full, no_bootstrap_tool.
        """
        return envs.build(self._rt, name, progress)

    def push_env(self, name: str, reference: str, *, progress: ProgressFn | None = None) -> str:
        """Publish a cached environment to `host[:port]/repo:tag`; return the manifest digest."""
        return envs.push(self._rt, name, reference, progress)

    def prune_envs(self) -> PruneResult:
        """Remove cached images that no env name or workspace uses."""
        return envs.prune(self._rt)

    def doctor(self) -> DoctorReport:
        """What this host can run and why (KVM, PVM, bubblewrap, images)."""
        return doctor.report(self._rt)

    def reap_expired(self) -> list[str]:
        """Delete workspaces whose TTL has passed; return their ids."""
        return lifecycle.reap_expired(self._rt)

    def close(self) -> None:
        """Close agent connections (workspaces keep running)."""
        self._rt.close()

    def __enter__(self) -> Roost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkspaceFiles:
    """File operations of one workspace (`ws.files`)."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def list(self, path: str = "/workspace", *, recursive: bool = False) -> FileListing:
        return operations.list_files(self._ws._rt, self._ws._record(), path, recursive)

    def stat(self, path: str) -> FileEntry:
        return operations.stat_file(self._ws._rt, self._ws._record(), path)

    def read(self, path: str, *, offset: int = 0, max_bytes: int | None = None) -> FileContent:
        """Read up to `max_bytes` (default 1 MiB, limit 8 MiB) from `offset`.

        Raises:
            RoostError: path_not_found, path_outside_workspace, read_too_large, is_a_directory.
        """
        return operations.read_file(self._ws._rt, self._ws._record(), path, offset, max_bytes)

    def write(self, path: str, data: bytes | str, *, mode: int | None = None) -> WriteResult:
        """Write a file atomically, creating parent directories."""
        payload = data.encode() if isinstance(data, str) else data
        return operations.write_file(self._ws._rt, self._ws._record(), path, payload, mode)

    def delete(self, path: str, *, recursive: bool = False) -> DeleteResult:
        return operations.delete_file(self._ws._rt, self._ws._record(), path, recursive)


class WorkspaceShells:
    """PTY shell sessions of one workspace (`ws.shells`); they outlive this process."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def open(
        self, *, cwd: str | None = None, cols: int = 120, rows: int = 32, env: dict[str, str] | None = None
    ) -> ShellInfo:
        """Start an interactive bash on a PTY; it keeps running between calls."""
        return shells.open_shell(self._ws._rt, self._ws._record(), cwd=cwd, cols=cols, rows=rows, env=env)

    def list(self) -> list[ShellInfo]:
        """Every shell this workspace's agent knows, running or not (`lost` after an agent restart)."""
        return shells.list_shells(self._ws._rt, self._ws._record())

    def read(
        self,
        shell_id: str,
        *,
        cursor: int = 0,
        max_bytes: int = 65536,
        plain: bool = False,
        wait_for_idle_ms: int | None = None,
        timeout_ms: int | None = None,
    ) -> ShellOutput:
        """Output from byte `cursor` on; `wait_for_idle_ms` first waits for the output to go quiet.

        Raises:
            RoostError: shell_not_found, shell_not_running, read_too_large.
        """
        return shells.read_shell(
            self._ws._rt,
            self._ws._record(),
            shell_id,
            cursor=cursor,
            max_bytes=max_bytes,
            plain=plain,
            wait_for_idle_ms=wait_for_idle_ms,
            timeout_ms=timeout_ms,
        )

    def write(self, shell_id: str, data: str | bytes, *, newline: bool = True) -> int:
        """Type into the shell (a newline is added unless `newline=False`); return bytes written."""
        return shells.write_shell(self._ws._rt, self._ws._record(), shell_id, data, newline=newline)

    def signal(self, shell_id: str, signal: str = "INT") -> str:
        """Send INT, TERM, HUP, KILL or QUIT to the shell's foreground job."""
        return shells.signal_shell(self._ws._rt, self._ws._record(), shell_id, signal)

    def resize(self, shell_id: str, cols: int, rows: int) -> None:
        """Change the terminal size; the foreground program gets SIGWINCH."""
        shells.resize_shell(self._ws._rt, self._ws._record(), shell_id, cols, rows)

    def close(self, shell_id: str) -> ShellInfo:
        """End the shell: HUP, then KILL after a short grace."""
        return shells.close_shell(self._ws._rt, self._ws._record(), shell_id)

    def attach(
        self, shell_id: str, on_output: Callable[[bytes], None], stop: threading.Event, *, cursor: int | None = None
    ) -> ShellInfo:
        """Stream the shell's output to `on_output` until `stop` is set or the shell ends."""
        return shells.attach_shell(self._ws._rt, self._ws._record(), shell_id, on_output, stop, cursor=cursor)


class Workspace:
    """A handle on one workspace. Cheap: it holds only the id."""

    def __init__(self, rt: Runtime, ws_id: str, *, ephemeral: bool = False) -> None:
        self._rt = rt
        self.id = ws_id
        self.ephemeral = ephemeral
        self.files = WorkspaceFiles(self)
        self.shells = WorkspaceShells(self)

    def _record(self) -> WorkspaceRecord:
        return self._rt.store.load(self.id)

    def info(self) -> WorkspaceInfo:
        """Current state, probing the agent's health."""
        return lifecycle.info(self._rt, self._record())

    status = info

    def exec(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        max_output_bytes: int | None = DEFAULT_MAX_OUTPUT,
        on_output: OutputCallback | None = None,
    ) -> ExecResult:
        """Run a command to completion: a string runs under bash -c, a list runs as argv.

        Raises:
            RoostError: command_not_found, path_not_found (cwd), agent errors.
        """
        spec = ExecSpec(
            command=command,
            cwd=cwd,
            env=dict(env or {}),
            timeout=timeout,
            stdin=stdin.encode() if isinstance(stdin, str) else stdin,
            max_output_bytes=max_output_bytes,
        )
        return operations.run_exec(self._rt, self._record(), spec, on_output)

    def sync_push(
        self, source: str | os.PathLike[str], *, dest: str = "/workspace", delete: bool = False
    ) -> SyncResult:
        """Copy a host directory (or tar file) into the workspace."""
        return operations.sync_push(self._rt, self._record(), os.fspath(source), dest, delete)

    def apply_patch(self, patch: str, *, dry_run: bool = False) -> PatchResult:
        """Apply a unified diff to /workspace, all hunks or none."""
        return operations.apply_patch(self._rt, self._record(), patch, dry_run)

    def logs(self, limit: int | None = None) -> list[ExecRecord]:
        """The exec history, oldest first (the newest 100 are kept)."""
        self._record()
        return ExecHistory(self._rt.store.dir(self.id)).entries(limit)

    def exec_output(
        self, exec_id: int, stream: str = "stdout", *, offset: int = 0, max_bytes: int = 65536
    ) -> OutputSlice:
        """A window of a past exec's saved output."""
        self._record()
        return ExecHistory(self._rt.store.dir(self.id)).read_output(exec_id, stream, offset, max_bytes)

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
        record = lifecycle.update(
            self._rt,
            self.id,
            name=name,
            labels=labels,
            remove_labels=tuple(remove_labels),
            ttl_seconds=ttl_seconds,
            clear_ttl=clear_ttl,
        )
        return lifecycle.info(self._rt, record, probe=False)

    def delete(self, *, force: bool = False) -> None:
        """Stop every process of the workspace and remove all its files."""
        lifecycle.delete(self._rt, self.id, force=force)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.ephemeral:
            try:
                self.delete(force=True)
            except RoostError:
                if exc is None:
                    raise

    def __repr__(self) -> str:
        return f"Workspace({self.id!r})"
