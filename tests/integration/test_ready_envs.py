"""The ready dev envs carry what they promise, used as an agent uses them, in a real sandbox.

The images come from the shared cache (`make images` builds debian:12, debian:12-python and
debian:12-node there; `ROOST_PREPARE_ENVS` chooses others): a test whose env is not prepared skips
and says how to prepare it, so no build is paid inside a timed test.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import SHARED_IMAGES, roost_client
from roost import Roost
from roost.backends import get_backend
from roost.images.cache import ImageCache
from roost.images.freshness import current_image

SANDBOX = get_backend("sandbox").availability()
TIMEOUT = 120.0

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"),
]


def prepared(env: str) -> None:
    """Skip unless the shared cache holds a current image of `env`."""
    if current_image(ImageCache(SHARED_IMAGES), env) is None:
        pytest.skip(
            f"{env} is not (or no longer) built in the shared image cache {SHARED_IMAGES}: "
            f"ROOST_PREPARE_ENVS='{env}' scripts/prepare-test-images.sh"
        )


@pytest.fixture
def roost(tmp_path: Path) -> Iterator[Roost]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "images").symlink_to(SHARED_IMAGES, target_is_directory=True)
    with roost_client(home, "sandbox") as client:
        yield client


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_debian_12_makes_a_venv_whose_pip_works_and_runs_make(roost: Roost) -> None:
    prepared("debian:12")
    with roost.create_workspace("debian:12") as ws:
        venv = ws.exec("python3 -m venv /workspace/.venv && /workspace/.venv/bin/pip --version", timeout=TIMEOUT)
        system_pip = ws.exec(["pip3", "--version"], timeout=TIMEOUT)
        make = ws.exec(["make", "--version"], timeout=TIMEOUT)

    assert venv.exit_code == 0, venv.stderr
    assert venv.stdout.startswith("pip ") and "/workspace/.venv/" in venv.stdout
    assert system_pip.exit_code == 0 and system_pip.stdout.startswith("pip "), system_pip.stderr
    assert make.exit_code == 0 and make.stdout.startswith("GNU Make "), make.stderr


def test_pip_install_e_dot_works_in_debian_12_without_a_venv(roost: Roost, tmp_path: Path) -> None:
    prepared("debian:12")
    repo = write(
        tmp_path / "repo",
        {
            "setup.py": """
                from setuptools import setup
                setup(name="sums", version="1.0", py_modules=["sums"])
            """,
            "sums.py": "TOTAL = 3\n",
        },
    )
    # An agent's first command, as it would type it (offline here: nothing to download).
    with roost.create_workspace("debian:12", seed_path=repo) as ws:
        installed = ws.exec("pip install --no-build-isolation --no-index -e .", timeout=TIMEOUT)
        imported = ws.exec("cd / && python3 -c 'import sums; print(sums.TOTAL)'", timeout=TIMEOUT)

    assert installed.exit_code == 0, installed.stdout + installed.stderr
    assert "externally-managed" not in installed.stderr
    assert imported.stdout.strip() == "3", imported.stderr


def test_the_readme_sdk_quickstart_runs_pytest_in_debian_12_python(roost: Roost, tmp_path: Path) -> None:
    prepared("debian:12-python")
    repo = write(
        tmp_path / "repo",
        {
            "test_sums.py": """
                def test_adds():
                    assert 1 + 1 == 2
            """,
        },
    )
    # As README.md's SDK quickstart writes it.
    with roost.create_workspace("debian:12-python", seed_path=repo) as ws:
        result = ws.exec(["python3", "-m", "pytest", "-q"], timeout=TIMEOUT)
        bare = ws.exec(["pytest", "-q"], timeout=TIMEOUT)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert bare.exit_code == 0 and "1 passed" in bare.stdout, bare.stdout + bare.stderr


def test_debian_12_python_builds_a_wheel_with_a_c_extension_offline(roost: Roost, tmp_path: Path) -> None:
    prepared("debian:12-python")
    repo = write(
        tmp_path / "repo",
        {
            "setup.py": """
                from setuptools import Extension, setup
                setup(name="fast", version="1.0", ext_modules=[Extension("fast", ["fast.c"])])
            """,
            "fast.c": """
                #include <Python.h>
                static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
                static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
                static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "fast", NULL, -1, methods};
                PyMODINIT_FUNC PyInit_fast(void) { return PyModule_Create(&module); }
            """,
        },
    )
    with roost.create_workspace("debian:12-python", seed_path=repo) as ws:
        built = ws.exec(
            "pip wheel --no-build-isolation --no-deps --no-index -w dist . "
            "&& python3 -m venv --system-site-packages v && v/bin/pip install --no-index dist/fast-*.whl "
            "&& cd / && /workspace/v/bin/python -c 'import fast; print(fast.answer())'",
            timeout=TIMEOUT,
        )

    assert built.exit_code == 0, built.stdout + built.stderr
    assert built.stdout.splitlines()[-1] == "42"


def test_debian_12_node_runs_npm_test(roost: Roost, tmp_path: Path) -> None:
    prepared("debian:12-node")
    repo = write(
        tmp_path / "repo",
        {
            "package.json": '{"name": "demo", "version": "1.0.0", "scripts": {"test": "node check.js"}}\n',
            "check.js": "const assert = require('assert'); assert.strictEqual(1 + 1, 2); console.log('node ok');\n",
        },
    )
    with roost.create_workspace("debian:12-node", seed_path=repo) as ws:
        result = ws.exec(["npm", "test"], timeout=TIMEOUT)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "node ok" in result.stdout
