"""`roost env list|inspect|pull|build|push|prune|create|remove`.

Imports: cli siblings, models and the standard library.
"""

from __future__ import annotations

import argparse
import json

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, human_size, shown, table
from roost.cli.progress import progress_for
from roost.models import EnvInfo


def _describe(info: EnvInfo) -> str:
    rows = [
        ("env", info.name),
        ("about", info.description),
        ("packages", ", ".join(info.packages)),
        ("cached", _cached(info)),
        ("source", info.source or "-"),
        ("digest", info.digest or info.key or "-"),
        ("size", human_size(info.size_bytes) if info.size_bytes else "-"),
        ("created", info.created_at or "-"),
        ("registry", info.registry_reference or "- (set ROOST_REGISTRY)"),
        ("python", info.interpreter or "-"),
    ]
    if info.recipe is not None:
        rows[8:] = [("parent", info.parent or "-"), ("layers", ", ".join(info.layers))]
        rows += [(f"recipe.{k}", json.dumps(v)) for k, v in info.recipe.items() if v and k != "from"]
    return "\n".join(f"{key:<9} {shown(value)}" for key, value in rows)


def _cached(info: EnvInfo) -> str:
    """yes, no, or stale: an image made from an older package list, which is rebuilt before use."""
    return "yes" if info.cached else "stale" if info.stale else "no"


def env_list(args: argparse.Namespace) -> int:
    infos = sdk(args).envs()
    if args.json:
        emit_json({"envs": [i.to_dict() for i in infos]})
        return 0
    rows = [
        [
            i.name,
            _cached(i),
            i.source or "-",
            human_size(i.size_bytes) if i.size_bytes else "-",
            i.description,
        ]
        for i in infos
    ]
    print(table(rows, ["ENV", "CACHED", "SOURCE", "SIZE", "DESCRIPTION"]))
    return 0


def env_inspect(args: argparse.Namespace) -> int:
    info = sdk(args).inspect_env(args.env_name)
    if args.json:
        emit_json(info.to_dict())
    else:
        print(_describe(info))
    return 0


def env_build(args: argparse.Namespace) -> int:
    roost = sdk(args)
    info = roost.inspect_env(args.env_name)
    if args.if_missing and info.cached:
        if args.json:
            emit_json(info.to_dict())
        else:
            print(f"{info.name} is already cached ({info.source}); nothing to build")
        return 0
    with progress_for(args.json, f"build {args.env_name}") as progress:
        info = roost.build_env(args.env_name, progress=progress)
    if args.json:
        emit_json(info.to_dict())
    else:
        print(f"built {info.name}: {human_size(info.size_bytes or 0)}, {info.key}")
    return 0


def env_pull(args: argparse.Namespace) -> int:
    with progress_for(args.json, f"pull {args.env_name}") as progress:
        info = sdk(args).pull_env(args.env_name, registry=args.registry, digest=args.digest, progress=progress)
    if args.json:
        emit_json(info.to_dict())
    else:
        print(f"pulled {info.name}: {info.digest}, {human_size(info.size_bytes or 0)}")
    return 0


def env_push(args: argparse.Namespace) -> int:
    with progress_for(args.json, f"push {args.env_name}") as progress:
        digest = sdk(args).push_env(args.env_name, args.reference, progress=progress)
    if args.json:
        emit_json({"env": args.env_name, "reference": args.reference, "digest": digest})
    else:
        print(f"pushed {args.env_name} to {args.reference}: {digest}")
    return 0


def env_prune(args: argparse.Namespace) -> int:
    result = sdk(args).prune_envs()
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"removed {len(result.removed)} image(s); {len(result.in_use)} in use by workspaces")
    return 0


def env_create(args: argparse.Namespace) -> int:
    options = {"apt": args.apt, "pip": args.pip, "npm": args.npm, "copy": args.copy, "run": args.run}
    with progress_for(args.json, f"create {args.env_name}") as progress:
        info = sdk(args).create_env(
            args.env_name,
            from_=args.parent,
            file=args.recipe_file,
            env=args.env,
            allow_hosts=args.allow_host,
            replace=args.replace,
            progress=progress,
            **options,
        )
    if args.json:
        emit_json(info.to_dict())
    else:
        print(f"created {info.name} on {info.parent}: {human_size(info.size_bytes or 0)} layer, {info.key}")
    return 0


def env_remove(args: argparse.Namespace) -> int:
    info = sdk(args).remove_env(args.env_name)
    if args.json:
        emit_json({"removed": info.name, "key": info.key})
    else:
        print(f"removed {info.name} (its layer goes with the next env prune)")
    return 0
