"""The catalog of environments roost knows by name.

Each entry names its Debian suite, the packages it carries and commands that
must exist inside it. Image building and pulling read this; the mock
backend only validates names against it.

This module imports only errors and the standard library.
"""

from __future__ import annotations

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


_BASE = ("python3",)
_STANDARD = (*_BASE, "git", "bash", "coreutils", "procps", "ca-certificates", "curl")
_BUILD = (*_STANDARD, "build-essential", "make", "pkg-config")

CATALOG: dict[str, EnvSpec] = {
    spec.name: spec
    for spec in (
        EnvSpec(
            "debian:12",
            "Debian 12 with python3, git, bash, coreutils, procps, curl",
            "bookworm",
            _STANDARD,
            ("python3", "git", "bash", "ps", "curl"),
        ),
        EnvSpec(
            "debian:12-build",
            "debian:12 plus build-essential, make and pkg-config",
            "bookworm",
            _BUILD,
            ("python3", "git", "gcc", "make", "pkg-config"),
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
