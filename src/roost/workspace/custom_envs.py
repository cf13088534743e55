"""Building a custom env: its recipe's steps run in a sandbox workspace of the parent env, and
what they changed (the sandbox's overlay upper dir) becomes a layer of the image cache.

The build workspace is an ordinary one (backend `sandbox`, labelled `roost.build=NAME`),
so steps run exactly as `workspace exec` runs commands, with the network under the recipe's
allowlist (`@debian @pypi @npm` plus its `allow_hosts`; no network at all when the recipe
installs nothing and allows no host). It is stopped before its upper dir is taken, and
deleted whatever happens. The layer is staged under the cache's tmp/, its owners shifted back
to the cache's ids (0..), and renamed into place only when complete.

Imports: config, errors, images (cache, catalog, idshift, manager, recipes), ownership, store records,
workspace siblings (lifecycle, operations, power) and the standard library.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from roost.config import images_dir
from roost.errors import ImageError
from roost.images.build import ProgressFn
from roost.images.cache import ImageCache, tree_size
from roost.images.catalog import env_spec
from roost.images.idshift import copy_tree
from roost.images.manager import ensure_image
from roost.images.recipes import (
    CustomEnv,
    Recipe,
    RecipeStore,
    build_failed,
    check_name,
    check_recipe,
    custom_env,
    env_exists,
    recipe_key,
)
from roost.ownership import OwnerOutOfRange, shift_tree
from roost.store.records import WorkspaceRecord
from roost.workspace import lifecycle, operations, power
from roost.workspace.engine import Engine

BUILD_LABEL = "roost.build"
BUILD_TTL_SECONDS = 3 * 3600
STEP_TIMEOUT = 1800.0
TAIL_LINES = 40
_STAGE_DIR = "/workspace/.roost-copy"


@dataclass(frozen=True)
class _Parent:
    """What a recipe builds on: a catalog env's rootfs, and the layers of a custom parent."""

    base_env: str
    base_key: str
    layers: tuple[str, ...] = ()
    env_vars: tuple[tuple[str, str], ...] = ()

    def identity(self) -> str:
        return ",".join((self.base_key, *self.layers))


@dataclass(frozen=True)
class _Step:
    label: str
    command: str


def create(
    engine: Engine, name: str, recipe: Recipe, *, replace: bool = False, progress: ProgressFn | None = None
) -> CustomEnv:
    """Build `recipe` as custom env `name` (a lookup when that layer is cached) and point the name at it.

    Raises:
        RoostError: invalid_env_name, invalid_recipe, env_not_found (parent), env_exists (another
            recipe has the name, without `replace`), copy_source_not_found, build_failed.
    """
    check_name(name)
    check_recipe(recipe)
    cache = ImageCache(images_dir(engine.home))
    store = RecipeStore(cache)
    parent = _parent(cache, recipe.parent, progress)
    key = recipe_key(parent.identity(), recipe)
    existing = store.lookup(name)
    if existing is not None and existing.key != key and not replace:
        raise env_exists(name)
    with cache.lock(f"recipe-{key}"):
        built = store.built(key) or _build(engine, store, name, recipe, parent, key, progress)
    return store.save(built.renamed(name, recipe))


def _parent(cache: ImageCache, name: str, progress: ProgressFn | None) -> _Parent:
    custom = custom_env(cache, name)
    if custom is not None:
        return _Parent(custom.base_env, custom.base_key, custom.layers, custom.env_vars)
    env_spec(name)
    return _Parent(name, ensure_image(cache, name, progress).key)


def _steps(recipe: Recipe) -> list[_Step]:
    """The recipe's commands in the fixed order apt, pip, npm, copy, run (copy: see `_copy_in`)."""
    steps = []
    if recipe.apt:
        packages = shlex.join(recipe.apt)
        steps.append(
            _Step(
                f"apt {' '.join(recipe.apt)}",
                "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                f"--no-install-recommends {packages} && apt-get clean && rm -rf /var/lib/apt/lists/*",
            )
        )
    if recipe.pip:
        steps.append(
            _Step(
                f"pip {' '.join(recipe.pip)}",
                f"python3 -m pip install --no-cache-dir --break-system-packages {shlex.join(recipe.pip)}",
            )
        )
    if recipe.npm:
        steps.append(_Step(f"npm {' '.join(recipe.npm)}", f"npm install -g {shlex.join(recipe.npm)}"))
    for index, copy in enumerate(recipe.copy):
        staged = f"{_STAGE_DIR}/{index}"
        source = f"{staged}/." if Path(copy.source).is_dir() else f"{staged}/file"
        steps.append(
            _Step(
                f"copy {copy.source} -> {copy.dest}",
                f"mkdir -p {shlex.quote(os.path.dirname(copy.dest) or '/')} && "
                f"cp -a {shlex.quote(source)} {shlex.quote(copy.dest)}",
            )
        )
    steps.extend(_Step(f"run {command}", command) for command in recipe.run)
    return steps


def _build(
    engine: Engine,
    store: RecipeStore,
    name: str,
    recipe: Recipe,
    parent: _Parent,
    key: str,
    progress: ProgressFn | None,
) -> CustomEnv:
    env_vars = tuple({**dict(parent.env_vars), **dict(recipe.env)}.items())
    options = lifecycle.CreateOptions(
        env=recipe.parent,
        labels={BUILD_LABEL: name},
        ttl_seconds=BUILD_TTL_SECONDS,
        backend="sandbox",
        network_policy="allowlist" if recipe.needs_network else "off",
        allow=recipe.allow() if recipe.needs_network else None,
        progress=progress,
    )
    record = lifecycle.create(engine, options).record
    try:
        _copy_in(engine, record, recipe)
        steps = _steps(recipe)
        for done, step in enumerate(steps):
            if progress:
                progress(step.label, done, len(steps) + 1)
            _run_step(engine, record, step, dict(env_vars), progress, (done, len(steps) + 1))
        if progress:
            progress("saving the layer", len(steps), len(steps) + 1)
        record = power.stop(engine, record.id)
        built = CustomEnv(
            name=name,
            recipe=recipe,
            key=key,
            base_env=parent.base_env,
            base_key=parent.base_key,
            layers=(*parent.layers, key),
            env_vars=env_vars,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            size_bytes=0,
        )
        return _keep_layer(engine, store, record, built)
    finally:
        lifecycle.delete(engine, record.id, force=True)


def _copy_in(engine: Engine, record: WorkspaceRecord, recipe: Recipe) -> None:
    """Each --copy source into the build workspace's /workspace (not part of the layer), for its step."""
    for index, copy in enumerate(recipe.copy):
        source = Path(copy.source)
        staged = f"{_STAGE_DIR}/{index}"
        if source.is_dir():
            operations.sync_push(engine, record, source, staged)
        else:
            with open(source, "rb") as fh:
                data = fh.read()
            operations.write_file(engine, record, f"{staged}/file", data, mode=os.stat(source).st_mode & 0o7777)


def _run_step(
    engine: Engine,
    record: WorkspaceRecord,
    step: _Step,
    env: dict[str, str],
    progress: ProgressFn | None,
    position: tuple[int, int],
) -> None:
    """Run one step, its output lines streamed as progress.

    Raises:
        ImageError: build_failed with the step, its exit code and its output's last lines.
    """
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    pending = {"stdout": b"", "stderr": b""}

    def on_output(channel: str, data: bytes) -> None:
        *lines, pending[channel] = (pending[channel] + data).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            tail.append(line)
            if progress:
                progress(f"{step.label}: {line}", *position)

    spec = operations.ExecSpec(command=step.command, env=env, timeout=STEP_TIMEOUT)
    result = operations.run_exec(engine, record, spec, on_output)
    tail.extend(rest.decode("utf-8", errors="replace") for rest in pending.values() if rest)
    if result.exit_code != 0 or result.timed_out:
        code = result.exit_code if result.exit_code is not None else -1
        raise build_failed(step.label, code, "\n".join(tail))


def _keep_layer(engine: Engine, store: RecipeStore, record: WorkspaceRecord, built: CustomEnv) -> CustomEnv:
    """Copy the stopped build's upper dir into the cache as the layer `built.key`, owners back to 0..

    Raises:
        ImageError: copy_failed, disk_full, image_invalid.
    """
    upper = engine.store.dir(record.id) / "layers" / "upper"
    backend = engine.backend(record)
    uid_offset, gid_offset = backend.rootfs_id_offset(record.boot)
    with store.cache.staging("recipe") as staged:
        tree = staged / "layer"
        copy_tree(upper, tree, "the built layer")
        _drop_runtime_traces(tree)
        try:
            shift_tree(tree, -uid_offset, -gid_offset)
        except OwnerOutOfRange as exc:
            raise ImageError(str(exc), code="image_invalid", hint="the build left files of unmapped owners") from None
        sized = dataclasses.replace(built, size_bytes=tree_size(tree))
        store.commit_layer(tree, sized)
    return sized


# Mount points a sandbox's boot (bwrap), not the recipe, leaves in the upper dir when empty.
_MOUNT_POINTS = ("opt/roost/roost", "opt/roost", "dev/shm", "dev", "tmp", "run/roost", "run")


def _drop_runtime_traces(tree: Path) -> None:
    """Remove the boot's empty mount points (deepest first), so the layer holds only what the steps changed."""
    for name in _MOUNT_POINTS:
        path = tree / name
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
