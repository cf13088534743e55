"""Any OCI image as a workspace's env, through the SDK.

    uv run python examples/oci_image.py                                  # how names resolve; runs nothing
    uv run python examples/oci_image.py 127.0.0.1:5000/team/tool:1       # pull it and run a workspace on it

With an image reference (a local registry's, for example one `roost env push` filled), it
creates a sandbox workspace from it, runs a command, and shows which python3 runs roost's
agent there: the image's own, or roost's bundle at /opt/roost/python for an image without
one (the user's PATH never has the bundle). Without one, it only shows how env names resolve:
the catalog first, then image references (Docker Hub short names included). State goes to a
temporary ROOST_HOME unless ROOST_HOME is set.
"""

from __future__ import annotations

import sys

from roost import Roost, RoostError


def show_resolution(roost: Roost) -> None:
    for name in ("debian:12", "python:3.12-slim", "127.0.0.1:5000/team/tool@sha256:" + "0" * 64):
        info = roost.inspect_env(name)
        print(f"{name} -> {info.registry_reference or 'roost catalog'} ({info.description})")


def run_image(reference: str) -> int:
    with Roost(backend="sandbox") as roost:
        with roost.create_workspace(reference) as ws:
            result = ws.exec(["sh", "-c", "uname -m; command -v python3 || echo 'no python3 on PATH'"], timeout=60)
            print(result.stdout, end="")
            print(f"workspace image: {ws.info().image}")
        info = roost.inspect_env(reference)
        print(f"digest {info.digest}; agent python: {info.interpreter}")
    return 0


def main() -> int:
    if len(sys.argv) > 1:
        try:
            return run_image(sys.argv[1])
        except RoostError as exc:
            print(f"error: {exc.code}: {exc.message} ({exc.hint})", file=sys.stderr)
            return 1
    with Roost() as roost:
        show_resolution(roost)
    print("skipped running an image: give a reference on a registry you can reach (e.g. a local one)")
    print("oci example: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
