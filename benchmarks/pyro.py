"""pyro-mcp 3.11's mock backend, for side-by-side rounds in the same run.

`PyroMock` sets up a throwaway venv under `.cache/bench-pyro-mcp` (never
roost's venv or uv.lock) with `pyro-mcp==3.11.0` and drives its SDK through
`pyro_driver.py`, a long-lived child process, so a benchmark can alternate a
roost round with a pyro round. `why_not()` says why it cannot run here.

What this setup works around, and says so in every result:
- pyro-mcp 3.11 needs Python >= 3.12; one is looked for on this machine
  (uv's discovery, no downloads).
- it imports `mcp.server.fastmcp`, gone in mcp 2.x: the venv pins `mcp<2`.
- its wheel lists `guest/pyro-init` in its runtime manifest without shipping
  it; the mock backend never runs it, so a copy of the bundle with an empty
  stand-in satisfies the startup check (PYRO_RUNTIME_BUNDLE_DIR).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".cache" / "bench-pyro-mcp"
PYRO = "pyro-mcp==3.11.0"
NOTES = (
    "pyro-mcp 3.11.0 in its own venv (Python >= 3.12, mcp<2 as it needs); its mock backend with "
    "allow_host_compat=True; an empty stand-in for the guest/pyro-init its wheel lacks and mock never runs"
)
SETUP_TIMEOUT = 300
CALL_TIMEOUT = 120


def _uv() -> str | None:
    bundled = REPO / ".cache" / "bootstrap" / "bin" / "uv"
    return shutil.which("uv") or (str(bundled) if bundled.exists() else None)


def _runs_312(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _python312() -> str | None:
    """A Python >= 3.12 already on this machine (on PATH, pyenv's or the system's); never downloaded."""
    candidates = [shutil.which(name) for name in ("python3.13", "python3.12")]
    for pattern in ("/usr/bin/python3.1[2-9]", "/usr/local/bin/python3.1[2-9]"):
        candidates += sorted(str(p) for p in Path("/").glob(pattern.lstrip("/")))
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted((str(p) for p in pyenv.glob("3.1[2-9]*/bin/python3")), reverse=True)
    return next((c for c in candidates if c and _runs_312(c)), None)


def _bundle(python: Path) -> Path:
    """A copy of pyro's runtime bundle with the missing init stand-in; its parent dir."""
    done = subprocess.run(
        [str(python), "-c", "import importlib.resources as r; print(r.files('pyro_mcp.runtime_bundle'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    source = Path(done.stdout.strip())
    copy = VENV / "runtime-bundle"
    if not copy.exists():
        shutil.copytree(source, copy)
    manifest = json.loads((copy / "linux-x86_64" / "manifest.json").read_text())
    init = copy / "linux-x86_64" / manifest["guest"]["init"]["path"]
    if not init.exists():
        init.write_bytes(b"")
    return copy


def setup() -> tuple[Path, Path]:
    """The venv's python and the bundle dir, made once per machine.

    Raises:
        RuntimeError: why pyro-mcp cannot be set up here.
    """
    python = VENV / "bin" / "python"
    if not (python.exists() and (VENV / ".installed").exists()):
        uv = _uv()
        if uv is None:
            raise RuntimeError("uv is not installed (run `make bootstrap`)")
        interpreter = _python312()
        if interpreter is None:
            raise RuntimeError("pyro-mcp 3.11 needs Python >= 3.12 and none is installed here")
        shutil.rmtree(VENV, ignore_errors=True)
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}
        for argv in (
            [uv, "venv", "-q", "--python", interpreter, str(VENV)],
            [uv, "pip", "install", "-q", "--python", str(python), PYRO, "mcp<2"],
        ):
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=SETUP_TIMEOUT)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-400:]}")
        (VENV / ".installed").write_text(PYRO + "\n")
    return python, _bundle(python)


def why_not() -> str | None:
    try:
        setup()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return f"pyro-mcp cannot run here: {exc}"
    return None


class PyroMock:
    """One pyro-mcp mock SDK in a child process, in its own temporary state dir."""

    def __init__(self) -> None:
        python, bundle = setup()
        self._base = Path(tempfile.mkdtemp(prefix="roost-bench-pyro-"))
        self._proc = subprocess.Popen(
            [str(python), str(Path(__file__).with_name("pyro_driver.py")), str(self._base)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYRO_RUNTIME_BUNDLE_DIR": str(bundle)},
        )

    def _call(self, **command: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            _, err = self._proc.communicate(timeout=CALL_TIMEOUT)
            raise RuntimeError(f"pyro driver ended: {err.strip()[-600:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def create(self, seed: Path) -> tuple[str, float]:
        reply = self._call(op="create", seed=str(seed))
        return str(reply["id"]), float(reply["ms"])

    def exec_true(self, ws_id: str) -> float:
        return float(self._call(op="exec", id=ws_id)["ms"])

    def delete(self, ws_id: str) -> float:
        return float(self._call(op="delete", id=ws_id)["ms"])

    def close(self) -> None:
        """Ask the driver to quit (kill it past the deadline) and remove its state."""
        try:
            if self._proc.poll() is None and self._proc.stdin is not None:
                try:
                    self._proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                    self._proc.stdin.close()
                except BrokenPipeError:
                    pass
            try:
                self._proc.wait(timeout=CALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        finally:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            shutil.rmtree(self._base, ignore_errors=True)

    def __enter__(self) -> PyroMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # `python -m benchmarks.pyro`: set up, and say whether it runs
    print(why_not() or f"ready: {VENV}", file=sys.stderr)
