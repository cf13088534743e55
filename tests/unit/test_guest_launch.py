"""How a guest starts roost's init and agent: on the image's own python3 (as always), or on roost's
python bundle through its own loader when the image has none."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from roost.errors import ImageError
from roost.images.cache import ImageCache
from roost.images.python_bundle import BUNDLE_INTERPRETER, BUNDLE_MARKER, HostPython, bundle_command
from roost.images.vm.build import image_key
from roost.images.vm.initramfs import ROOT_INIT
from roost.images.vm.kernel import KernelBundle
from roost.images.vm.launch import GuestLaunch, guest_launch

KERNEL = KernelBundle(Path("/k"), "sha256-k", "6.1", "lz4", ("virtio",), "linux-image", "1", "ab" * 32)
# The launcher every image with its own /usr/bin/python3 has had since the first guest image.
CLASSIC_LAUNCHER = """#!/usr/bin/python3 -I
# roost's PID 1 (roost.guest.init); the code lives under /opt/roost.
import sys

sys.path.insert(0, "/opt/roost")
from roost.guest.init import main

sys.exit(main())
"""


def cache_with_bundle(root: Path, python: str = "3.11") -> ImageCache:
    """An image cache already holding a (tiny) complete bundle for the python running the tests."""
    cache = ImageCache(root / "images")
    bundle = cache.root / "bundles" / HostPython.current().key()
    (bundle / "bin").mkdir(parents=True)
    (bundle / "bin" / "python3").write_bytes(b"\x7fELF")
    (bundle / BUNDLE_MARKER).write_text(json.dumps({"python": python, "from": "/usr/bin/python3.11"}))
    return cache


def rootfs_with_python(root: Path, link: str = "python3.11") -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "python3").symlink_to(link)
    return root


def run_launcher(launcher: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    """Execute a /sbin/roost-init text against a stand-in roost.guest.init; what its main got."""
    received: list[tuple[object, ...]] = []
    stand_in = types.ModuleType("roost.guest.init")
    stand_in.main = lambda *args, **kwargs: received.append((args, kwargs)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "roost.guest.init", stand_in)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SystemExit) as exited:
        exec(compile(launcher, "/sbin/roost-init", "exec"), {"__name__": "__main__"})
    assert exited.value.code == 0
    assert sys.path[0] == "/opt/roost"
    (call,) = received
    return call


def test_an_image_with_its_own_python3_boots_exactly_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rootfs = rootfs_with_python(tmp_path / "rootfs")
    launch = guest_launch(ImageCache(tmp_path / "images"), "debian:12", "/usr/bin/python3", rootfs)
    assert launch.launcher == CLASSIC_LAUNCHER
    assert (launch.root_init, launch.bundle, launch.bytecode_tag) == ((ROOT_INIT,), None, "cpython-311")
    assert image_key("env", KERNEL, "bb", "code", launch) == image_key("env", KERNEL, "bb", "code")
    assert run_launcher(launch.launcher, monkeypatch) == ((), {})
    assert not (tmp_path / "images" / "bundles").exists(), "no bundle is built for an image with python3"


def test_a_python3_under_usr_local_is_named_by_the_launchers_first_line(tmp_path: Path) -> None:
    launch = guest_launch(ImageCache(tmp_path / "images"), "python:3.12", "/usr/local/bin/python3", tmp_path)
    assert launch.launcher.startswith("#!/usr/local/bin/python3 -I\n")
    assert launch.root_init == (ROOT_INIT,) and launch.bundle is None


def test_an_image_without_python3_starts_init_and_agent_through_the_bundles_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = cache_with_bundle(tmp_path)
    launch = guest_launch(cache, "busybox", BUNDLE_INTERPRETER, tmp_path / "rootfs")
    prefix = tuple(bundle_command())
    assert prefix[0] == "/opt/roost/python/lib/ld-linux-x86-64.so.2" and prefix[-1] == BUNDLE_INTERPRETER
    assert launch.root_init == (*prefix, "-I", ROOT_INIT)
    assert launch.bundle == cache.root / "bundles" / HostPython.current().key()
    assert launch.bytecode_tag == "cpython-311"
    assert not launch.launcher.startswith("#!"), "nothing may start it through the image's loader"
    assert run_launcher(launch.launcher, monkeypatch) == ((), {"python": prefix})


def test_the_guest_image_key_follows_the_bundle(tmp_path: Path) -> None:
    launch = guest_launch(cache_with_bundle(tmp_path), "busybox", BUNDLE_INTERPRETER, tmp_path)
    other = GuestLaunch(launch.interpreter, launch.launcher, launch.root_init, None, tmp_path / "python3.11-other")
    keys = {
        image_key("env", KERNEL, "bb", "code"),
        image_key("env", KERNEL, "bb", "code", launch),
        image_key("env", KERNEL, "bb", "code", other),
    }
    assert len(keys) == 3


def test_an_interpreter_roost_cannot_start_is_image_unsupported(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        guest_launch(ImageCache(tmp_path / "images"), "odd", "/opt/python/bin/python3", tmp_path)
    assert caught.value.code == "image_unsupported" and "/opt/python/bin/python3" in caught.value.message
