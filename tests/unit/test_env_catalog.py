"""The catalog's ready dev envs, and cached images made from an older package list not passing for an env.

Builds here are stand-ins (`run_bootstrap` replaced by one that writes a tiny tree with the commands
the entry promises); real builds of these envs are in tests/integration/test_ready_envs.py.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost import Roost
from roost.images import manager
from roost.images.build import ProgressFn
from roost.images.cache import EnvImage, ImageCache
from roost.images.catalog import CATALOG, EnvSpec, env_spec, package_fingerprint
from roost.images.freshness import current_image, is_current
from roost.images.manager import SOURCES_ENV, ensure_image

READY = ("debian:12", "debian:12-python", "debian:12-node")


def test_debian_12_carries_pip_venv_and_make_and_promises_their_commands() -> None:
    spec = env_spec("debian:12")
    assert {"python3-pip", "python3-venv", "make", "git", "curl"} <= set(spec.packages)
    assert {"python3", "pip3", "make", "git", "bash"} <= set(spec.expected_commands)


def test_the_python_env_adds_pytest_and_what_building_wheels_needs() -> None:
    spec = env_spec("debian:12-python")
    assert {"python3-pytest", "python3-dev", "build-essential", "python3-setuptools", "python3-wheel"} <= set(
        spec.packages
    )
    assert {"pytest", "gcc", "make", "pip3", "python3-config"} <= set(spec.expected_commands)


def test_the_node_env_adds_nodejs_and_npm() -> None:
    spec = env_spec("debian:12-node")
    assert {"nodejs", "npm"} <= set(spec.packages)
    assert {"node", "npm", "pip3", "make"} <= set(spec.expected_commands)


@pytest.mark.parametrize("name", ["debian:12-python", "debian:12-node", "debian:12-build"])
def test_every_ready_env_is_debian_12_plus_more(name: str) -> None:
    base, spec = env_spec("debian:12"), env_spec(name)
    assert set(base.packages) < set(spec.packages)
    assert set(base.expected_commands) <= set(spec.expected_commands)
    assert spec.suite == base.suite


def test_the_minimal_env_stays_minimal() -> None:
    assert env_spec("debian:12-base").packages == ("python3",)


def test_the_fingerprint_follows_suite_and_package_set_not_order() -> None:
    packages = ("python3", "git", "make")
    assert package_fingerprint("bookworm", packages) == package_fingerprint("bookworm", tuple(reversed(packages)))
    assert package_fingerprint("bookworm", packages) != package_fingerprint("bookworm", (*packages, "npm"))
    assert package_fingerprint("bookworm", packages) != package_fingerprint("trixie", packages)
    assert len({CATALOG[name].built_from for name in CATALOG}) == len(CATALOG)


# -- stale images ---------------------------------------------------------------------------------


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Replace the bootstrap with a tiny tree holding the entry's commands; yields the envs built."""
    built: list[str] = []

    def bootstrap(spec: EnvSpec, dest: Path, progress: ProgressFn | None = None) -> str:
        built.append(spec.name)
        (dest / "usr" / "bin").mkdir(parents=True)
        for command in spec.expected_commands:
            (dest / "usr" / "bin" / command).write_text("#!/bin/true\n")
        (dest / "etc").mkdir()
        (dest / "etc" / "packages").write_text("\n".join(spec.packages))
        return "stand-in"

    monkeypatch.setattr(manager, "run_bootstrap", bootstrap)
    monkeypatch.setenv(SOURCES_ENV, "build")
    yield built


def cache_old_build(cache: ImageCache, env: str, packages: tuple[str, ...], *, record_fingerprint: bool) -> EnvImage:
    """Cache `env` as a build of an earlier catalog entry with `packages` (recording the fingerprint or,
    as images did before they kept one, only the packages and suite)."""
    spec = env_spec(env)
    with cache.staging("old") as staged:
        root = staged / "rootfs"
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "unique").write_text(uuid.uuid4().hex)
        image = EnvImage(
            env=env,
            key=f"sha256-{uuid.uuid4().hex * 2}",
            source="build",
            created_at="2024-01-01T00:00:00Z",
            size_bytes=1,
            packages=packages,
            details={"tool": "mmdebstrap", "suite": spec.suite},
            built_from=package_fingerprint(spec.suite, packages) if record_fingerprint else None,
        )
        return cache.commit(root, image)


OLD_DEBIAN_12 = ("python3", "git", "bash", "coreutils", "procps", "ca-certificates", "curl")


@pytest.mark.parametrize("record_fingerprint", [True, False], ids=["fingerprint", "packages-only"])
def test_an_image_built_from_an_older_package_list_is_rebuilt_and_the_old_rootfs_kept(
    tmp_path: Path, builds: list[str], record_fingerprint: bool
) -> None:
    cache = ImageCache(tmp_path / "images")
    old = cache_old_build(cache, "debian:12", OLD_DEBIAN_12, record_fingerprint=record_fingerprint)
    assert not is_current(old)
    assert current_image(cache, "debian:12") is None

    new = ensure_image(cache, "debian:12")

    assert builds == ["debian:12"]
    assert new.key != old.key
    assert new.built_from == env_spec("debian:12").built_from
    assert "make" in (cache.rootfs(new.key) / "etc" / "packages").read_text().split()
    assert cache.lookup("debian:12") == new
    assert cache.rootfs(old.key).is_dir(), "a workspace made from the old image keeps it"
    assert ensure_image(cache, "debian:12") == new
    assert builds == ["debian:12"]


def test_an_image_recorded_before_fingerprints_with_todays_packages_is_current(
    tmp_path: Path, builds: list[str]
) -> None:
    cache = ImageCache(tmp_path / "images")
    old = cache_old_build(cache, "debian:12-base", env_spec("debian:12-base").packages, record_fingerprint=False)
    assert ensure_image(cache, "debian:12-base") == old
    assert builds == []


def test_a_pulled_image_without_a_fingerprint_is_not_current(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "images")
    old = cache_old_build(cache, "debian:12", env_spec("debian:12").packages, record_fingerprint=True)
    assert is_current(old)
    assert not is_current(dataclasses.replace(old, source="registry", built_from=None))


def test_env_list_shows_a_stale_image_and_build_makes_it_current(tmp_path: Path, builds: list[str]) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    with Roost(home=home, backend="mock") as roost:
        old = cache_old_build(ImageCache(home / "images"), "debian:12", OLD_DEBIAN_12, record_fingerprint=True)
        listed = {info.name: info for info in roost.envs()}
        assert set(READY) <= set(listed)
        stale = listed["debian:12"]
        assert (stale.cached, stale.stale, stale.key) == (False, True, old.key)
        assert (listed["debian:12-node"].cached, listed["debian:12-node"].stale) == (False, False)

        rebuilt = roost.build_env("debian:12")

        assert (rebuilt.cached, rebuilt.stale) == (True, False)
        assert rebuilt.key != old.key
        assert roost.inspect_env("debian:12") == rebuilt
