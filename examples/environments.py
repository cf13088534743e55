"""Environments (images) and host checks, through the SDK.

    uv run python examples/environments.py                      # list envs and run doctor; changes nothing
    uv run python examples/environments.py --build debian:12    # also build it (mmdebstrap, ~30 s, needs the Debian mirror)
    uv run python examples/environments.py --pull debian:12 --registry 127.0.0.1:5000/roost

Lists the environment catalog and what is cached, then prints `doctor`'s
view of this host: which backends can run here and why not. It builds or
pulls an image only when asked to with a flag. State goes to a temporary
ROOST_HOME unless `--home DIR` is given; images go to `$ROOST_IMAGES` when
that is set, else under the home, so a build into the temporary home is
thrown away at the end (pass `--home` to keep it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from roost import Roost, RoostError


def show_progress(step: str, done: int, total: int) -> None:
    if step.startswith("sha256:"):
        return  # per-blob byte counts while pulling: too chatty here
    print(f"  [{done}/{total}] {step}", flush=True)


def tour(roost: Roost, args: argparse.Namespace) -> int:
    print(f"state directory: {roost.home}")
    print("environments:")
    for env in roost.envs():
        cached = f"cached ({env.source}, {env.size_bytes or 0} bytes)" if env.cached else "not cached"
        print(f"  {env.name:<16} {cached:<34} {env.description}")
    base = roost.inspect_env("debian:12-base")
    print(f"debian:12-base packages: {', '.join(base.packages)}")

    report = roost.doctor()
    print(f"doctor: default backend {report.default_backend}")
    for name, check in report.backends.items():
        print(f"  {'ok' if check.ok else 'no':<3} {name:<12} {check.detail}")
    for check in report.checks:
        print(f"  {'ok' if check.ok else 'no':<3} {check.name:<12} {check.detail}")

    try:
        if args.build:
            print(f"building {args.build} (this takes a while):")
            info = roost.build_env(args.build, progress=show_progress)
            print(f"built {info.name}: {info.key}, {info.size_bytes} bytes")
        if args.pull:
            print(f"pulling {args.pull}:")
            info = roost.pull_env(args.pull, registry=args.registry, progress=show_progress)
            print(f"pulled {info.name}: {info.digest}")
    except RoostError as exc:
        print(f"failed: {exc.message} [{exc.code}]\nhint: {exc.hint}", file=sys.stderr)
        return 1
    print("environments example: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", help="roost state directory to use (default: a temporary one)")
    parser.add_argument("--build", metavar="ENV", help="build this environment locally")
    parser.add_argument("--pull", metavar="ENV", help="pull this environment from a registry")
    parser.add_argument("--registry", help="host[:port]/prefix for --pull (default $ROOST_REGISTRY)")
    parser.add_argument("--backend", default="mock", help="backend for doctor's default (default: mock)")
    args = parser.parse_args(argv)
    if args.home:
        with Roost(home=args.home, backend=args.backend) as roost:
            return tour(roost, args)
    with (
        tempfile.TemporaryDirectory(prefix="roost-envs-") as scratch,
        Roost(home=Path(scratch, "home"), backend=args.backend) as roost,
    ):
        return tour(roost, args)


if __name__ == "__main__":
    sys.exit(main())
