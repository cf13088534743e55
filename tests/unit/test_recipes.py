"""Recipes without a sandbox: parsing (options and roost-env.toml), the cache key, and a layer's
deletions carried into OCI whiteouts and into a flattened tree."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from roost import Roost
from roost.errors import InvalidArgument
from roost.images.cache import MARKER, ImageCache
from roost.images.flatten import flattened
from roost.images.layers import layer_from_directory
from roost.images.recipe_file import recipe_from_file, recipe_from_options
from roost.images.recipes import CopyStep, CustomEnv, Recipe, RecipeStore, recipe_key


def test_a_recipe_file_reads_the_same_fields_as_the_options(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "roost-env.toml"
    path.write_text(
        'from = "debian:12"\napt = ["jq"]\npip = ["requests>=2"]\ncopy = ["conf:/etc/app", '
        '{source = "conf", dest = "/etc/app2"}]\nrun = ["true"]\nenv = {A = "1"}\nallow_hosts = ["example.com"]\n'
    )
    from_file = recipe_from_file(path)
    assert from_file.copy == (
        CopyStep(str(tmp_path / "conf"), "/etc/app"),
        CopyStep(str(tmp_path / "conf"), "/etc/app2"),
    )
    assert (from_file.apt, from_file.pip, from_file.env, from_file.allow_hosts) == (
        ("jq",),
        ("requests>=2",),
        (("A", "1"),),
        ("example.com",),
    )
    options = recipe_from_options("debian:12", apt=["jq"], env=["A=1"], run=["true"])
    assert options.env == (("A", "1"),) and options.parent == "debian:12"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('from = "debian:12"\nrunn = ["x"]\n', "runn"),
        ('apt = ["jq"]\n', "from"),
        ('from = "d"\nenv = ["A=1"]\n', "env"),
    ],
)
def test_a_bad_recipe_file_is_refused_naming_what_is_wrong(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "roost-env.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument) as refused:
        recipe_from_file(path)
    assert refused.value.code == "invalid_recipe" and named in refused.value.message


def test_the_key_follows_parent_recipe_and_copied_content_not_the_source_path(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for where in (one, two):
        where.mkdir()
        (where / "f").write_text("same")
    base = Recipe("debian:12", copy=(CopyStep(str(one), "/opt/x"),), run=("true",))
    moved = Recipe("debian:12", copy=(CopyStep(str(two), "/opt/x"),), run=("true",))
    assert recipe_key("sha256-a", base) == recipe_key("sha256-a", moved)
    assert recipe_key("sha256-a", base) != recipe_key("sha256-b", base)
    assert recipe_key("sha256-a", base) != recipe_key("sha256-a", Recipe("debian:12", run=("false",)))
    (two / "f").write_text("changed")
    assert recipe_key("sha256-a", base) != recipe_key("sha256-a", moved)


@pytest.fixture
def layered(tmp_path: Path) -> tuple[ImageCache, CustomEnv]:
    """A tiny base rootfs and one layer that adds a file, deletes a file and replaces a directory."""
    if os.geteuid() != 0:
        pytest.skip("an overlay whiteout (a 0/0 character device) needs root to make outside overlayfs")
    cache = ImageCache(tmp_path / "images")
    cache.ensure()
    base = cache.rootfs("sha256-base")
    (base / "etc" / "old").mkdir(parents=True)
    (base / "etc" / "old" / "a").write_text("a")
    (base / "etc" / "gone").write_text("gone")
    (base / "etc" / "kept").write_text("kept")
    (base / MARKER).write_text("{}")
    store = RecipeStore(cache)
    store.ensure()
    layer = store.layer("layer-1")
    (layer / "etc" / "old").mkdir(parents=True)
    (layer / "etc" / "old" / "b").write_text("b")
    os.setxattr(layer / "etc" / "old", "user.overlay.opaque", b"y")
    os.mknod(layer / "etc" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    (layer / "new").write_text("new")
    (layer / MARKER).write_text("{}")
    env = CustomEnv("c", Recipe("debian:12"), "layer-1", "debian:12", "sha256-base", ("layer-1",), (), "now", 0)
    return cache, env


def test_a_layer_is_published_with_oci_whiteouts(layered: tuple[ImageCache, CustomEnv], tmp_path: Path) -> None:
    cache, env = layered
    out = tmp_path / "layer.tar.gz"
    layer_from_directory(RecipeStore(cache).layer(env.key), out, overlay=True)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"etc/.wh.gone", "etc/old/.wh..wh..opq", "etc/old/b", "new"} <= names
    assert "etc/gone" not in names


def test_a_flattened_custom_env_has_the_layer_applied(layered: tuple[ImageCache, CustomEnv]) -> None:
    cache, env = layered
    image = flattened(cache, env)
    root = cache.rootfs(image.key)
    assert image.key == "flat-1"
    assert (root / "new").read_text() == "new" and (root / "etc" / "kept").read_text() == "kept"
    assert not (root / "etc" / "gone").exists()
    assert sorted(os.listdir(root / "etc" / "old")) == ["b"]  # the opaque dir hides the base's a
    assert flattened(cache, env).key == image.key  # made once


def test_prune_keeps_what_a_custom_env_stands_on_and_drops_a_removed_ones_layer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cache = ImageCache(home / "images")
    cache.ensure()
    store = RecipeStore(cache)
    for key in ("sha256-base", "sha256-stray"):
        cache.rootfs(key).mkdir()
        (cache.rootfs(key) / MARKER).write_text("{}")
    kept_env = CustomEnv("kept", Recipe("debian:12"), "layer-k", "debian:12", "sha256-base", ("layer-k",), (), "t", 0)
    gone_env = CustomEnv("gone", Recipe("debian:12"), "layer-g", "debian:12", "sha256-base", ("layer-g",), (), "t", 0)
    for env in (kept_env, gone_env):
        tree = tmp_path / env.key
        tree.mkdir()
        store.commit_layer(tree, env)
        store.save(env)
    store.forget("gone")
    with Roost(home=home, backend="mock") as roost:
        removed = set(roost.prune_envs().removed)
    assert removed == {"sha256-stray", "layer-g"}
    assert store.lookup("kept") == kept_env and (cache.rootfs("sha256-base") / MARKER).is_file()
    assert not store.layer("layer-g").exists() and not (cache.root / "layers" / "layer-g.json").exists()
