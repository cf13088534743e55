"""Which python3 runs the agent in a pulled image, judged from its files; and how env names resolve."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from roost.errors import ImageError, NotFound
from roost.images.elf import MACHINE_X86_64, read_elf
from roost.images.interpreter import choose_interpreter, resolve_in_image
from roost.images.oci import RegistryClient
from roost.images.python_bundle import BUNDLE_INTERPRETER
from roost.images.resolve import resolve_env

STATIC = Path("/bin/busybox")  # a static x86-64 program: no loader needed
DYNAMIC = Path(os.path.realpath("/bin/true"))  # needs /lib64/ld-linux-x86-64.so.2
needs_static = pytest.mark.skipif(not STATIC.is_file(), reason="busybox-static is not installed")


def image_with(tmp_path: Path, program: Path, name: str, link: str = "/usr/bin/python3") -> Path:
    """A tree whose `link` is a symlink to `/usr/bin/<name>`, a copy of `program`."""
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    shutil.copy(program, root / "usr" / "bin" / name)
    target = root / link.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(f"/usr/bin/{name}")
    return root


@needs_static
def test_a_recent_enough_python3_of_the_image_is_used(tmp_path: Path) -> None:
    root = image_with(tmp_path, STATIC, "python3.12", link="/usr/local/bin/python3")
    assert choose_interpreter(root, "x") == "/usr/local/bin/python3"


@needs_static
def test_an_old_python3_gets_the_bundle(tmp_path: Path) -> None:
    assert choose_interpreter(image_with(tmp_path, STATIC, "python3.9"), "x") == BUNDLE_INTERPRETER


def test_a_python3_whose_loader_the_image_lacks_gets_the_bundle(tmp_path: Path) -> None:
    assert choose_interpreter(image_with(tmp_path, DYNAMIC, "python3.11"), "x") == BUNDLE_INTERPRETER


def test_no_python3_at_all_gets_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    assert choose_interpreter(tmp_path, "x") == BUNDLE_INTERPRETER


def test_programs_for_another_machine_are_image_unsupported(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    data = bytearray(DYNAMIC.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    (tmp_path / "bin" / "sh").write_bytes(bytes(data))
    with pytest.raises(ImageError) as caught:
        choose_interpreter(tmp_path, "example/arm:1")
    assert caught.value.code == "image_unsupported" and caught.value.hint


def test_an_architecture_other_than_amd64_is_image_unsupported(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        choose_interpreter(tmp_path, "x", "arm64")
    assert caught.value.code == "image_unsupported"


def test_links_resolve_inside_the_image_and_never_out_of_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "escape").symlink_to("../../../../../../etc/passwd")
    (root / "usr" / "bin" / "loop").symlink_to("loop")
    assert resolve_in_image(root, "/usr/bin/escape") is None  # /etc/passwd of the image: absent
    assert resolve_in_image(root, "/usr/bin/loop") is None


def test_elf_headers_give_machine_and_loader() -> None:
    info = read_elf(DYNAMIC)
    assert info is not None and info.machine == MACHINE_X86_64 and info.interpreter
    assert read_elf(Path("/etc/hostname")) is None


@pytest.mark.parametrize(
    ("name", "kind", "canonical"),
    [
        ("debian:12", "catalog", "debian:12"),
        ("python:3.12-slim", "image", "docker.io/library/python:3.12-slim"),
        ("127.0.0.1:5000/team/ci:7", "image", "127.0.0.1:5000/team/ci:7"),
        (f"reg.example/x@sha256:{'a' * 64}", "image", f"reg.example/x@sha256:{'a' * 64}"),
    ],
)
def test_env_names_resolve_catalog_first_then_image_references(name: str, kind: str, canonical: str) -> None:
    source = resolve_env(name)
    assert (source.kind, source.canonical) == (kind, canonical)


def test_docker_hub_short_names_go_to_registry_1() -> None:
    source = resolve_env("python:3.12-slim")
    assert source.image is not None
    with RegistryClient(source.image.registry) as client:
        assert client.base_url == "https://registry-1.docker.io"


def test_a_name_that_is_neither_is_env_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        resolve_env("Not An Env")
    assert caught.value.code == "env_not_found" and "debian:12" in (caught.value.hint or "")
