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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from roost import arguments
from roost._handles import Readiness, Streamed, Workspace, WorkspaceFiles, WorkspaceServices, WorkspaceShells
from roost._secret_handles import HostSecrets
from roost.config import DEFAULT_ENV, default_home
from roost.confinement import HostArg
from roost.errors import InvalidArgument, RoostError
from roost.images import recipe_file
from roost.images.build import ProgressFn
from roost.models import DoctorReport, EnvInfo, ExecResult, PruneResult, WorkspaceInfo
from roost.store.records import WorkspaceRecord
from roost.workspace import doctor, envs, lifecycle, reaping
from roost.workspace.engine import Engine
from roost.workspace.list_filter import ListFilter
from roost.workspace.operations import ExecSpec, OutputCallback

if TYPE_CHECKING:
    from roost.backends.firecracker.binary import InstalledRuntime

__all__ = ["Readiness", "Roost", "Streamed", "Workspace", "WorkspaceFiles", "WorkspaceServices", "WorkspaceShells"]


class Roost:
    """Entry point of the SDK: creates, finds and runs workspaces.

    Args:
        home: state directory (default `$ROOST_HOME` or ~/.local/share/roost).
        backend: `firecracker`, `sandbox` or `mock` (default: best available,
            or `$ROOST_BACKEND`).
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, backend: str | None = None) -> None:
        from roost.config import requested_backend

        self._engine = Engine(Path(home) if home is not None else default_home(), backend or requested_backend())
        self.warnings: list[str] = []
        # Workspaces whose TTL had passed, deleted as this instance was made (one file read when none is due).
        self.reaped: list[str] = self.reap_due()

    def reap_due(self) -> list[str]:
        """Delete the workspaces whose TTL has passed, when one has since the last look; return their ids.

        Cheap when none is due (one small file read), so it can run before every command.
        """
        try:
            return reaping.reap_due(self._engine)
        except RoostError:
            return []  # a home that cannot be read: the call made next says why

    @property
    def home(self) -> Path:
        return self._engine.home

    @property
    def secrets(self) -> HostSecrets:
        """The host's encrypted secret store: `set`, `list`, `delete` (values never come back out)."""
        return HostSecrets(self._engine)

    def create_workspace(
        self,
        env: str = DEFAULT_ENV,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        seed_path: HostArg | None = None,
        ttl_seconds: int | None = None,
        backend: str | None = None,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        pids: int | None = None,
        network_policy: str = "off",
        allow: Sequence[str] | None = None,
        publish: Sequence[str | int] | None = None,
        secrets: Sequence[str] = (),
        ephemeral: bool = True,
        progress: ProgressFn | None = None,
    ) -> Workspace:
        """Create a workspace and wait until its agent answers.

        `secrets` attaches secrets of the host's store (`"NAME"` or `"NAME:MODE"` each; see
        `roost.secrets`): its processes may then ask for them, and its outputs redact them.

        With `ephemeral` (the default), using the handle as a context manager
        deletes the workspace on exit. `progress(step, done, total)` hears
        about image pulls and builds, which the first create of an env may need.
        `seed_path` (a directory or tar file) is resolved once as given; no
        symlink inside it is followed (links are copied as links, and the
        workspace refuses ones that lead out). A `ConfinedPath` is opened from
        its root without following any link on the way.

        Raises:
            RoostError: env_not_found, seed_not_found, name_taken, invalid_argument,
                backend_unavailable, network_unsupported, port_in_use, or a backend start failure;
                secret_not_found, secret_mode_unsupported before anything starts.
        """
        options = lifecycle.CreateOptions(
            env=env,
            name=name,
            labels=labels or {},
            seed_path=arguments.host_path(seed_path, "seed_path") if seed_path is not None else None,
            ttl_seconds=ttl_seconds,
            backend=backend,
            vcpus=vcpus,
            mem_mib=mem_mib,
            pids=pids,
            network_policy=network_policy,
            allow=allow,
            publish=publish,
            progress=progress,
            secrets=secrets,
        )
        return self._create(options, ephemeral=ephemeral)

    def create_run_workspace(
        self,
        env: str = DEFAULT_ENV,
        *,
        backend: str | None = None,
        seed_path: HostArg | None = None,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        pids: int | None = None,
        network_policy: str = "off",
        allow: Sequence[str] | None = None,
        publish: Sequence[str | int] | None = None,
        progress: ProgressFn | None = None,
    ) -> Workspace:
        """A throwaway workspace for one command, as `run` makes it; use it as a context manager.

        It is labelled `roost.run=1` and has a TTL of `RUN_TTL_SECONDS` (300).
        This process owns it until its `with` block ends, which deletes it, and
        reaping never removes a workspace whose owner is alive: the TTL only
        matters for a workspace left behind by a process that was killed, which
        the first `list` or `create` after it expires removes.

        Raises:
            RoostError: as `create_workspace`.
        """
        options = lifecycle.CreateOptions(
            env=env,
            labels={lifecycle.RUN_LABEL: "1"},
            seed_path=arguments.host_path(seed_path, "seed_path") if seed_path is not None else None,
            ttl_seconds=lifecycle.RUN_TTL_SECONDS,
            backend=backend,
            vcpus=vcpus,
            mem_mib=mem_mib,
            pids=pids,
            network_policy=network_policy,
            allow=allow,
            publish=publish,
            progress=progress,
        )
        return self._create(options, ephemeral=True, keep_owner=True)

    def _create(self, options: lifecycle.CreateOptions, *, ephemeral: bool, keep_owner: bool = False) -> Workspace:
        reaping.reap_expired(self._engine)
        created = lifecycle.create(self._engine, options, keep_owner=keep_owner)
        if created.warning:
            self.warnings.append(created.warning)
        return Workspace(self._engine, created.record.id, ephemeral=ephemeral, owner=created.owner)

    def workspace(self, ref: str) -> Workspace:
        """A handle on an existing workspace by id, unique id prefix or name.

        Raises:
            NotFound: workspace_not_found.
            ConflictError: workspace_ambiguous.
        """
        return Workspace(self._engine, self._engine.store.resolve(ref), ephemeral=False)

    def list_workspaces(
        self,
        *,
        labels: Mapping[str, str] | None = None,
        state: str | None = None,
        backend: str | None = None,
    ) -> list[WorkspaceInfo]:
        """Every workspace (expired ones are reaped first), or those that have all of
        `labels`, are in `state` and run on `backend`.

        A workspace whose record cannot be read is listed with state
        `corrupt` and the way out in `health`.

        Raises:
            InvalidArgument: an unknown state or backend.
        """
        wanted = ListFilter(labels=dict(labels or {}), state=state, backend=backend)
        reaping.reap_expired(self._engine)
        infos = (
            lifecycle.info(self._engine, r, probe=True) if isinstance(r, WorkspaceRecord) else lifecycle.corrupt_info(r)
            for r in lifecycle.list_records(self._engine)
        )
        return [info for info in infos if wanted.keeps(info)]

    def run(
        self,
        env: str,
        command: str | Sequence[str],
        *,
        backend: str | None = None,
        timeout: float | None = None,
        cwd: str | None = None,
        env_vars: dict[str, str] | None = None,
        seed_path: HostArg | None = None,
        vcpus: int | None = None,
        mem_mib: int | None = None,
        pids: int | None = None,
        network_policy: str = "off",
        allow: Sequence[str] | None = None,
        publish: Sequence[str | int] | None = None,
        stdin: bytes | str | None = None,
        on_output: OutputCallback | None = None,
        progress: ProgressFn | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> ExecResult:
        """Create a workspace, run one command, delete the workspace (even on failure or Ctrl-C).

        `progress` hears about the create (see `create_workspace`); `on_ready()`
        is called once the workspace is up and before the command starts (a
        terminal can take its progress display down there and show `warnings`
        before the command's output). A workspace whose process was killed
        before it could delete it is reaped once its TTL has passed (see
        `create_run_workspace`).

        Raises:
            RoostError: invalid_argument for a bad command, cwd, env, timeout or network
                request (before any workspace is made), or whatever creating the workspace or
                running the command raises.
        """
        ExecSpec(command=command, cwd=cwd, env=env_vars or {}, timeout=timeout).args()
        workspace = self.create_run_workspace(
            env,
            backend=backend,
            seed_path=seed_path,
            vcpus=vcpus,
            mem_mib=mem_mib,
            pids=pids,
            network_policy=network_policy,
            allow=allow,
            publish=publish,
            progress=progress,
        )
        with workspace:
            if on_ready is not None:
                on_ready()
            return workspace.exec(command, cwd=cwd, env=env_vars, timeout=timeout, stdin=stdin, on_output=on_output)

    def delete_workspace(self, ref: str, *, force: bool = False) -> str:
        """Delete a workspace by reference and return its id.

        With `force`, also removes a workspace whose record is corrupt or
        missing (an interrupted create), given by its exact id.

        Raises:
            NotFound: workspace_not_found.
            WorkspaceError: workspace_corrupt, without force.
        """
        return lifecycle.delete(self._engine, ref, force=force)

    def envs(self) -> list[EnvInfo]:
        """Every environment in the catalog, with its cached image if any, then the custom envs."""
        return envs.list_envs(self._engine)

    def inspect_env(self, name: str) -> EnvInfo:
        """One environment and its cached image.

        Raises:
            NotFound: env_not_found.
        """
        return envs.inspect_env(self._engine, name)

    def pull_env(
        self,
        name: str,
        *,
        registry: str | None = None,
        digest: str | None = None,
        progress: ProgressFn | None = None,
    ) -> EnvInfo:
        """Pull an environment's image from a registry (every blob sha256-verified), by tag or by `digest`.

        Raises:
            ImageError: no_registry, registry_unreachable, image_not_found, digest_mismatch.
        """
        return envs.pull(self._engine, name, registry, digest, progress)

    def build_env(self, name: str, *, progress: ProgressFn | None = None) -> EnvInfo:
        """Build an environment locally with mmdebstrap/debootstrap from apt's mirror.

        Raises:
            ImageError: build_failed, disk_full, no_bootstrap_tool, userns_unavailable.
        """
        return envs.build(self._engine, name, progress)

    def push_env(self, name: str, reference: str, *, progress: ProgressFn | None = None) -> str:
        """Publish a cached environment to `host[:port]/repo:tag`; return the manifest digest."""
        return envs.push(self._engine, name, reference, progress)

    def create_env(
        self,
        name: str,
        *,
        from_: str | None = None,
        apt: Sequence[str] = (),
        pip: Sequence[str] = (),
        npm: Sequence[str] = (),
        copy: Sequence[str] = (),
        run: Sequence[str] = (),
        env: dict[str, str] | Sequence[str] = (),
        allow_hosts: Sequence[str] = (),
        file: str | os.PathLike[str] | None = None,
        replace: bool = False,
        progress: ProgressFn | None = None,
    ) -> EnvInfo:
        """Build a custom env `name` from a recipe on top of env `from_` (or from a roost-env.toml `file`).

        Steps run in the order apt, pip, npm, copy (`"SRC:DEST"` each), run, with `env` set for
        all of them and for every process of the env's workspaces. The result is cached by the
        content of parent, recipe and copied files: the same recipe again is a lookup.
        `progress(step, done, total)` hears each step and each line of its output.

        Raises:
            InvalidArgument: invalid_env_name, invalid_recipe (also: both or neither of `from_` and `file`).
            NotFound: env_not_found (the parent), copy_source_not_found, recipe_not_found.
            ConflictError: env_exists (the name has another recipe; pass `replace`).
            ImageError: build_failed with `details` step, exit_code and output_tail.
        """
        if (file is None) == (from_ is None):
            raise InvalidArgument(
                "give either from_ (the parent env) or file (a roost-env.toml)", code="invalid_recipe"
            )
        if file is not None:
            if apt or pip or npm or copy or run or env or allow_hosts:
                raise InvalidArgument("a recipe file cannot be combined with recipe options", code="invalid_recipe")
            recipe = recipe_file.recipe_from_file(Path(file))
        else:
            assert from_ is not None
            recipe = recipe_file.recipe_from_options(
                from_, apt=apt, pip=pip, npm=npm, copy=copy, run=run, env=env, allow_hosts=allow_hosts
            )
        return envs.create_env(self._engine, name, recipe, replace=replace, progress=progress)

    def remove_env(self, name: str) -> EnvInfo:
        """Remove custom env `name` (its layers go with the next `prune_envs` once nothing uses them).

        Raises:
            NotFound: env_not_found (not a custom env).
            ConflictError: env_in_use while a workspace or another custom env uses it (`details` names them).
        """
        return envs.remove_env(self._engine, name)

    def prune_envs(self) -> PruneResult:
        """Remove cached images that no env name or workspace uses."""
        return envs.prune(self._engine)

    def install_runtime(self, version: str | None = None) -> InstalledRuntime:
        """Install Firecracker's official release for this host (default v1.12.1) into `<home>/runtime`.

        The tarball is checked against the release's published sha256 and each
        binary against the tarball's SHA256SUMS before anything is installed.

        Raises:
            InvalidArgument: invalid_version.
            BackendError: runtime_download_failed, runtime_checksum_mismatch, unsupported_arch, firecracker_broken.
        """
        from roost.backends.firecracker.binary import install_runtime

        return install_runtime(self.home, version)

    def doctor(self) -> DoctorReport:
        """What this host can run and why (KVM, PVM, bubblewrap, images)."""
        return doctor.report(self._engine)

    def reap_expired(self) -> list[str]:
        """Delete workspaces whose TTL has passed; return their ids (a scan of every record, whether
        one is due or not: `Roost()` itself reaps those due, at the cost of one file read)."""
        return reaping.reap_expired(self._engine)

    def close(self) -> None:
        """Close agent connections (workspaces keep running)."""
        self._engine.close()

    def __enter__(self) -> Roost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
