"""A custom env from a recipe file, through the SDK.

    uv run python examples/custom_env.py                  # shows the recipe; builds it if debian:12 is cached
    uv run python examples/custom_env.py --home ~/.local/share/roost

Writes a small project and a `roost-env.toml` next to it (a copy, a variable, two run steps:
no network needed), checks that a misspelled key is refused, and, when debian:12 is cached
in the home's image cache (`$ROOST_IMAGES`, or `roost env build debian:12`) and the sandbox
backend runs here, builds the env, builds it again (a cache hit), runs a workspace from it
and removes it. State goes to a temporary ROOST_HOME unless `--home DIR` is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from roost import Roost, RoostError

RECIPE = """\
from = "debian:12"
copy = ["tool:/opt/tool"]
env = {TOOL_HOME = "/opt/tool"}
run = [
    "chmod +x /opt/tool/hello",
    "ln -s /opt/tool/hello /usr/local/bin/hello",
]
"""


def write_project(where: Path) -> Path:
    (where / "tool").mkdir(parents=True)
    (where / "tool" / "hello").write_text('#!/bin/sh\necho "hello from $TOOL_HOME"\n')
    recipe = where / "roost-env.toml"
    recipe.write_text(RECIPE)
    (where / "typo.toml").write_text(RECIPE.replace("run =", "runn ="))
    return recipe


def can_build(roost: Roost) -> str | None:
    """Why the build is skipped here, or None."""
    sandbox = roost.doctor().backends.get("sandbox")
    if sandbox is None or not sandbox.ok:
        return "the sandbox backend cannot run here"
    if not roost.inspect_env("debian:12").cached:
        return "debian:12 is not cached in this home (roost env build debian:12)"
    return None


def tour(roost: Roost, project: Path) -> int:
    recipe = write_project(project)
    print(f"recipe {recipe}:\n{RECIPE}")
    try:
        roost.create_env("typo", file=project / "typo.toml")
    except RoostError as exc:
        print(f"a misspelled key is refused: {exc.code} ({exc.message})")
    reason = can_build(roost)
    if reason:
        print(f"skipping the build: {reason}")
        print("custom env example: ok")
        return 0
    started = time.monotonic()
    info = roost.create_env("example-tool", file=recipe, replace=True)
    print(f"built {info.name} on {info.parent} in {time.monotonic() - started:.1f} s: layer {info.key}")
    started = time.monotonic()
    roost.create_env("example-tool", file=recipe)
    print(f"built again with nothing changed: {(time.monotonic() - started) * 1000:.0f} ms (a cache hit)")
    with roost.create_workspace("example-tool", backend="sandbox") as ws:
        print(f"the workspace says: {ws.exec('hello').stdout.strip()}")
    roost.remove_env("example-tool")
    print("custom env example: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", help="roost state directory to use (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="roost-recipe-") as scratch:
        home = Path(args.home) if args.home else Path(scratch, "home")
        with Roost(home=home) as roost:
            return tour(roost, Path(scratch, "project"))


if __name__ == "__main__":
    sys.exit(main())
