"""Custom environments: a recipe on top of a parent env, built once into a layer of the image cache.

A `Recipe` is what the user asked for (`roost env create NAME --from ENV --apt ... --run ...`
or a `roost-env.toml`); its steps always run in one fixed order: apt, pip, npm, copy, run,
with `env` set for all of them and recorded into the env. A built recipe is a *layer*: the
directory of what its steps changed (the build sandbox's overlay upper dir, deletions kept
as overlay whiteouts), stored as::

    layers/<key>/            the layer's tree, owned as a rootfs in the cache is (ids unshifted)
    layers/<key>.json        its `CustomEnv` (written before the tree is renamed into place)
    recipes/<name>.json      which layer a custom env name currently means

`<key>` is the sha256 of the parent's identity (its rootfs key and layers), the canonical
recipe and the content of every `--copy` source, so building the same recipe again is a
lookup. A custom env's tree is its base rootfs with its layers over it (overlay lowers).

Imports: errors, images.build (tree_digest), images.cache, images.catalog, store.atomic and
the standard library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import ConflictError, ImageError, InvalidArgument, NotFound, Remedy
from roost.images.build import tree_digest
from roost.images.cache import MARKER, ImageCache
from roost.images.catalog import CATALOG
from roost.store.atomic import write_atomic

STEP_ORDER = ("apt", "pip", "npm", "copy", "run")
DEFAULT_ALLOW = ("@debian", "@pypi", "@npm")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}(:[a-z0-9][a-z0-9._-]{0,62})?")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PACKAGE = re.compile(r"[A-Za-z0-9@][A-Za-z0-9@._+:/=<>~!^*,\[\]-]*")


@dataclass(frozen=True)
class CopyStep:
    """`--copy SRC:DEST`: a host file or directory put at DEST (absolute) in the env."""

    source: str
    dest: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "dest": self.dest}


@dataclass(frozen=True)
class Recipe:
    """What a custom env is made of, as asked for."""

    parent: str
    apt: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    copy: tuple[CopyStep, ...] = ()
    run: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    allow_hosts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.parent,
            "apt": list(self.apt),
            "pip": list(self.pip),
            "npm": list(self.npm),
            "copy": [c.to_dict() for c in self.copy],
            "run": list(self.run),
            "env": dict(self.env),
            "allow_hosts": list(self.allow_hosts),
        }

    def canonical(self) -> bytes:
        """The recipe as hashed: sorted keys, no whitespace; copy sources by their content, not their host path."""
        data = self.to_dict()
        data["copy"] = [c.dest for c in self.copy]
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @property
    def needs_network(self) -> bool:
        return bool(self.apt or self.pip or self.npm or self.allow_hosts)

    def allow(self) -> list[str]:
        """The build sandbox's allowlist: the package presets and `allow_hosts`."""
        return [*DEFAULT_ALLOW, *self.allow_hosts]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return cls(
            parent=str(data["from"]),
            apt=tuple(data.get("apt", ())),
            pip=tuple(data.get("pip", ())),
            npm=tuple(data.get("npm", ())),
            copy=tuple(CopyStep(c["source"], c["dest"]) for c in data.get("copy", ())),
            run=tuple(data.get("run", ())),
            env=tuple(dict(data.get("env", {})).items()),
            allow_hosts=tuple(data.get("allow_hosts", ())),
        )


@dataclass(frozen=True)
class CustomEnv:
    """A built custom env: its recipe, its parent, the base rootfs and the layers over it (bottom first)."""

    name: str
    recipe: Recipe
    key: str
    base_env: str
    base_key: str
    layers: tuple[str, ...]
    env_vars: tuple[tuple[str, str], ...]
    created_at: str
    size_bytes: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def parent(self) -> str:
        return self.recipe.parent

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["recipe"] = self.recipe.to_dict()
        data["layers"] = list(self.layers)
        data["env_vars"] = dict(self.env_vars)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomEnv:
        return cls(
            name=data["name"],
            recipe=Recipe.from_dict(data["recipe"]),
            key=data["key"],
            base_env=data["base_env"],
            base_key=data["base_key"],
            layers=tuple(data["layers"]),
            env_vars=tuple(dict(data.get("env_vars", {})).items()),
            created_at=data["created_at"],
            size_bytes=int(data.get("size_bytes", 0)),
            details=dict(data.get("details", {})),
        )

    def renamed(self, name: str, recipe: Recipe) -> CustomEnv:
        return dataclasses.replace(self, name=name, recipe=recipe)


def check_name(name: str) -> None:
    """Raises: InvalidArgument: invalid_env_name (a catalog name, or not `name[:tag]` of a-z 0-9 . _ -)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{name!r} is not a valid env name",
            code="invalid_env_name",
            hint="use NAME or NAME:TAG of a-z 0-9 . _ - (at most 63 each), e.g. myproject:1",
        )
    if name in CATALOG:
        raise InvalidArgument(
            f"{name!r} is a built-in env; a custom env needs a name of its own",
            code="invalid_env_name",
            hint="pick another name, e.g. myproject",
        )


def check_recipe(recipe: Recipe) -> None:
    """Raises: InvalidArgument: invalid_recipe, naming the field and the value at fault."""

    def bad(what: str, value: str, hint: str) -> InvalidArgument:
        return InvalidArgument(f"recipe {what} {value!r} is not valid", code="invalid_recipe", hint=hint)

    for kind in ("apt", "pip", "npm"):
        for package in getattr(recipe, kind):
            if not isinstance(package, str) or not _PACKAGE.fullmatch(package):
                raise bad(kind, str(package), "a package name (with a version spec), no spaces or shell characters")
    for step in recipe.copy:
        if not step.source or not step.dest.startswith("/") or "\0" in step.dest:
            raise bad("copy", f"{step.source}:{step.dest}", "SRC:DEST with DEST an absolute path in the env")
    for command in recipe.run:
        if not isinstance(command, str) or not command.strip():
            raise bad("run", str(command), "a shell command line")
    for key, value in recipe.env:
        if not _ENV_KEY.fullmatch(key) or "\0" in value:
            raise bad("env", f"{key}={value}", "K=V with K a variable name")


def _source_digest(source: Path) -> str:
    """The content of one --copy source: a tree digest for a directory, sha256 of mode and bytes for a file.

    Raises:
        NotFound: copy_source_not_found.
    """
    try:
        st = os.stat(source)  # a link given as the source is the caller's own: followed, as the copy does
    except OSError:
        raise NotFound(f"--copy source {source} does not exist", code="copy_source_not_found") from None
    if stat.S_ISDIR(st.st_mode):
        return tree_digest(source)
    digest = hashlib.sha256(f"{stat.S_IMODE(st.st_mode)}\0".encode())
    with open(source, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def recipe_key(parent_identity: str, recipe: Recipe) -> str:
    """The layer key: sha256 of the parent's identity, the canonical recipe and each copy source's content."""
    digest = hashlib.sha256(parent_identity.encode() + b"\0" + recipe.canonical())
    for step in recipe.copy:
        digest.update(b"\0" + _source_digest(Path(step.source)).encode())
    return "layer-" + digest.hexdigest()


def _safe(name: str) -> str:
    return name.replace("/", "_").replace(":", "_")


class RecipeStore:
    """Custom env records and their layers inside one `ImageCache`."""

    def __init__(self, cache: ImageCache) -> None:
        self.cache = cache
        self._records = cache.root / "recipes"
        self._layers = cache.root / "layers"

    def ensure(self) -> None:
        self.cache.ensure()
        for directory in (self._records, self._layers):
            directory.mkdir(mode=0o700, exist_ok=True)

    def layer(self, key: str) -> Path:
        return self._layers / key

    def built(self, key: str) -> CustomEnv | None:
        """The env a finished layer was built as, if that layer is complete."""
        try:
            data = json.loads((self._layers / f"{key}.json").read_text())
            built = CustomEnv.from_dict(data)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return built if (self.layer(key) / MARKER).is_file() else None

    def commit_layer(self, tree: Path, built: CustomEnv) -> None:
        """Move a finished layer tree into place (its record first: a tree without one is never used)."""
        self.ensure()
        write_atomic(tree / MARKER, json.dumps(built.to_dict(), indent=2).encode(), mode=0o644)
        write_atomic(self._layers / f"{built.key}.json", json.dumps(built.to_dict(), indent=2).encode())
        final = self.layer(built.key)
        if final.exists():
            shutil.rmtree(tree, ignore_errors=True)
        else:
            os.rename(tree, final)
        os.chmod(final, 0o755)

    def save(self, env: CustomEnv) -> CustomEnv:
        self.ensure()
        write_atomic(self._records / f"{_safe(env.name)}.json", json.dumps(env.to_dict(), indent=2).encode())
        return env

    def lookup(self, name: str) -> CustomEnv | None:
        """The custom env `name`, if its record reads and every layer of it is cached."""
        try:
            env = CustomEnv.from_dict(json.loads((self._records / f"{_safe(name)}.json").read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if env.name != name or not all((self.layer(k) / MARKER).is_file() for k in env.layers):
            return None
        return env

    def all(self) -> list[CustomEnv]:
        if not self._records.is_dir():
            return []
        names = []
        for path in sorted(self._records.glob("*.json")):
            try:
                names.append(str(json.loads(path.read_text())["name"]))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return [env for env in (self.lookup(n) for n in names) if env is not None]

    def forget(self, name: str) -> None:
        (self._records / f"{_safe(name)}.json").unlink(missing_ok=True)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove layers (and their records) that no custom env and no key in `keep` uses."""
        if not self._layers.is_dir():
            return []
        used = keep | {k for env in self.all() for k in env.layers}
        removed = []
        for path in sorted(self._layers.iterdir()):
            key = path.name.removesuffix(".json")
            if key not in used:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(key)
                else:
                    path.unlink(missing_ok=True)
        return removed


def custom_env(cache: ImageCache, name: str) -> CustomEnv | None:
    """The custom env called `name` in `cache`, or None (the resolver's step 2)."""
    return RecipeStore(cache).lookup(name)


def layer_chain(cache: ImageCache, key: str) -> CustomEnv | None:
    """The env a workspace's recorded image key means when that key is a layer (None: a plain rootfs key)."""
    return RecipeStore(cache).built(key) if key.startswith("layer-") else None


def env_exists(name: str) -> ConflictError:
    return ConflictError(
        f"custom env {name!r} exists with another recipe",
        code="env_exists",
        remedy=Remedy(
            "create it again with replace to point the name at the new recipe", "env_create", flags=("replace",)
        ),
    )


def not_custom(name: str) -> NotFound:
    return NotFound(
        f"{name!r} is not a custom env",
        code="env_not_found",
        hint="env list shows the custom envs (SOURCE recipe); built-in ones cannot be removed",
    )


def build_failed(step: str, exit_code: int, tail: str) -> ImageError:
    return ImageError(
        f"recipe step {step!r} failed with exit code {exit_code}",
        code="build_failed",
        hint="fix the step (its output's last lines are in details.output_tail) and create the env again",
        details={"step": step, "exit_code": exit_code, "output_tail": tail},
    )
