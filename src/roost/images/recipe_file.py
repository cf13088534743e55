"""A recipe from command-line options or from a `roost-env.toml` file (the same fields).

    from = "debian:12"                      # the parent env (required)
    apt = ["jq"]                            # Debian packages
    pip = ["requests==2.32.3"]              # Python packages (the parent needs pip)
    npm = ["typescript"]                    # global npm packages (the parent needs npm)
    copy = ["./config:/etc/myapp"]          # SRC:DEST, or {source = "...", dest = "..."}
    run = ["useradd -m dev"]                # shell command lines, in order
    env = {APP_ENV = "dev"}                 # set for every step and in every workspace
    allow_hosts = ["example.com"]           # more hosts the build may reach

Relative copy sources are taken from the file's directory (from the current one for options).
An unknown key is refused, naming it.

Imports: errors, images.recipes and the standard library.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roost.errors import InvalidArgument, NotFound
from roost.images.recipes import CopyStep, Recipe

FIELDS = ("from", "apt", "pip", "npm", "copy", "run", "env", "allow_hosts")


def _invalid(message: str, hint: str) -> InvalidArgument:
    return InvalidArgument(message, code="invalid_recipe", hint=hint)


def _copy_step(value: Any, base: Path) -> CopyStep:
    if isinstance(value, str):
        source, sep, dest = value.rpartition(":")
        if not sep or not source:
            raise _invalid(f"copy {value!r} is not SRC:DEST", "e.g. ./config:/etc/myapp")
    elif isinstance(value, dict) and set(value) == {"source", "dest"}:
        source, dest = str(value["source"]), str(value["dest"])
    else:
        raise _invalid(f"copy {value!r} is not SRC:DEST", 'give "SRC:DEST" or {source = "...", dest = "..."}')
    return CopyStep(str((base / source).absolute()), dest)


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"recipe field {key!r} must be a list of strings", f'e.g. {key} = ["..."]')
    return tuple(value)


def _env_pairs(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    found = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise _invalid(f"env {pair!r} is not K=V", "e.g. APP_ENV=dev")
        found.append((key, value))
    return tuple(found)


def recipe_from_dict(data: dict[str, Any], base: Path) -> Recipe:
    """A recipe from the file's fields; copy sources relative to `base`.

    Raises:
        InvalidArgument: invalid_recipe, naming an unknown key or a field of the wrong type.
    """
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise _invalid(f"unknown recipe key {unknown[0]!r}", f"the keys are: {', '.join(FIELDS)}")
    parent = data.get("from")
    if not isinstance(parent, str) or not parent:
        raise _invalid("the recipe has no 'from' (its parent env)", 'e.g. from = "debian:12"')
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise _invalid("recipe field 'env' must be a table of strings", 'e.g. env = {APP_ENV = "dev"}')
    copies = data.get("copy", [])
    if not isinstance(copies, list):
        raise _invalid("recipe field 'copy' must be a list", 'e.g. copy = ["./config:/etc/myapp"]')
    return Recipe(
        parent=parent,
        apt=_strings(data, "apt"),
        pip=_strings(data, "pip"),
        npm=_strings(data, "npm"),
        copy=tuple(_copy_step(c, base) for c in copies),
        run=_strings(data, "run"),
        env=tuple(env.items()),
        allow_hosts=_strings(data, "allow_hosts"),
    )


def recipe_from_file(path: Path) -> Recipe:
    """Raises: NotFound: recipe_not_found. InvalidArgument: invalid_recipe (bad TOML, unknown key)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise NotFound(f"cannot read recipe {path}: {exc.strerror}", code="recipe_not_found") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(f"{path} is not valid TOML: {exc}", "see docs/environments.md, Writing a recipe") from None
    return recipe_from_dict(data, path.parent)


def recipe_from_options(
    parent: str,
    *,
    apt: Sequence[str] = (),
    pip: Sequence[str] = (),
    npm: Sequence[str] = (),
    copy: Sequence[str] = (),
    run: Sequence[str] = (),
    env: Sequence[str] | dict[str, str] = (),
    allow_hosts: Sequence[str] = (),
) -> Recipe:
    """A recipe from the CLI's options (`--copy SRC:DEST`, `--env K=V`, each repeatable).

    Raises:
        InvalidArgument: invalid_recipe.
    """
    pairs = tuple(env.items()) if isinstance(env, dict) else _env_pairs(env)
    return Recipe(
        parent=parent,
        apt=tuple(apt),
        pip=tuple(pip),
        npm=tuple(npm),
        copy=tuple(_copy_step(c, Path.cwd()) for c in copy),
        run=tuple(run),
        env=pairs,
        allow_hosts=tuple(allow_hosts),
    )
