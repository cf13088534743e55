"""The catalog of environments roost knows by name.

Each entry names its Debian suite, the packages it carries and commands that
must exist inside it. Image building and pulling read this; the mock
backend only validates names against it. `EnvSpec.built_from` fingerprints
what an entry is built from (suite and packages): a cached image recording
another fingerprint was made from an older entry and no longer passes for it.

Imports: errors and the standard library.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from roost.errors import NotFound, Remedy


@dataclass(frozen=True)
class EnvSpec:
    name: str
    description: str
    suite: str
    packages: tuple[str, ...]
    expected_commands: tuple[str, ...]
    # Where a published image lives (host[:port]/prefix) and its pinned
    # manifest digest. roost publishes none yet: $ROOST_REGISTRY supplies one.
    registry: str | None = None
    digest: str | None = None

    @property
    def built_from(self) -> str:
        """The fingerprint of what this entry is built from (see `package_fingerprint`)."""
        return package_fingerprint(self.suite, self.packages)


# What roost does to a built tree beyond installing packages (`build.finish_rootfs`); bumped when that
# changes, so images made before are stale. 2: Debian's EXTERNALLY-MANAGED marker is removed.
FINISH_VERSION = 2


def package_fingerprint(suite: str, packages: tuple[str, ...] | list[str]) -> str:
    """`sha256:<hex>` over a Debian suite, a package set (order does not matter) and `FINISH_VERSION`."""
    fields = {"suite": suite, "packages": sorted(set(packages)), "finish": FINISH_VERSION}
    canonical = json.dumps(fields, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


_BASE = ("python3",)
# What a coding agent reaches for first: pip and venv for Python projects, make for `make test`.
_STANDARD = (
    *_BASE,
    "git",
    "bash",
    "coreutils",
    "procps",
    "ca-certificates",
    "curl",
    "python3-pip",
    "python3-venv",
    "make",
)
_STANDARD_COMMANDS = ("python3", "git", "bash", "ps", "curl", "pip3", "make")
_BUILD = (*_STANDARD, "build-essential", "pkg-config")
# Building wheels needs the headers and a compiler; the test runner and packaging tools as Debian ships them.
_PYTHON = (*_STANDARD, "python3-dev", "build-essential", "python3-pytest", "python3-setuptools", "python3-wheel")
_NODE = (*_STANDARD, "nodejs", "npm")

CATALOG: dict[str, EnvSpec] = {
    spec.name: spec
    for spec in (
        EnvSpec(
            "debian:12",
            "Debian 12 with python3, pip, venv, make, git, bash, coreutils, procps, curl",
            "bookworm",
            _STANDARD,
            _STANDARD_COMMANDS,
        ),
        EnvSpec(
            "debian:12-python",
            "debian:12 plus pytest, python3-dev, build-essential, setuptools and wheel",
            "bookworm",
            _PYTHON,
            (*_STANDARD_COMMANDS, "pytest", "gcc", "python3-config"),
        ),
        EnvSpec(
            "debian:12-node",
            "debian:12 plus nodejs and npm",
            "bookworm",
            _NODE,
            (*_STANDARD_COMMANDS, "node", "npm"),
        ),
        EnvSpec(
            "debian:12-build",
            "debian:12 plus build-essential and pkg-config",
            "bookworm",
            _BUILD,
            (*_STANDARD_COMMANDS, "gcc", "pkg-config"),
        ),
        EnvSpec("debian:12-base", "minimal Debian 12 with python3", "bookworm", _BASE, ("python3", "sh")),
    )
}


def env_spec(name: str) -> EnvSpec:
    """The catalog entry for `name`.

    Raises:
        NotFound: env_not_found.
    """
    try:
        return CATALOG[name]
    except KeyError:
        raise NotFound(
            f"unknown environment {name!r}",
            code="env_not_found",
            remedy=Remedy(f"known environments: {', '.join(sorted(CATALOG))}; list them", "env_list"),
        ) from None
