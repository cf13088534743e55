"""The `roost` CLI as a user meets it, for the e2e tests to import by name: a separate process per
call against one `$ROOST_HOME`, with a deadline on every call so nothing hangs, and what checks
its answers (the fixtures that make these live in conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Generous: one call normally takes ~100 ms; this only stops a hung CLI from eating CI.
CALL_TIMEOUT = 30.0


def backends_here() -> list[str]:
    """The backends an e2e test that runs on each can use here: mock, and the sandbox where it runs."""
    from roost.backends import get_backend

    return ["mock", *(["sandbox"] if get_backend("sandbox").availability().available else [])]


def home_with_shared_images(home: Path) -> Path:
    """A new `$ROOST_HOME` whose images are the machine's shared cache, so no test builds one again."""
    from roost.config import IMAGES_ENV

    images = Path(os.environ.get(IMAGES_ENV) or Path(__file__).resolve().parents[2] / ".cache" / "images")
    images.mkdir(parents=True, exist_ok=True)
    home.mkdir(mode=0o700, parents=True)
    (home / "images").symlink_to(images, target_is_directory=True)
    return home


class RoostCli:
    """Runs `python -m roost ...` against one `$ROOST_HOME`."""

    def __init__(self, home: Path, backend: str = "mock") -> None:
        self.home = home
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ROOST_HOME": str(home),
            "ROOST_BACKEND": backend,
            "LANG": "C.UTF-8",
        }

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "roost", *args]

    def __call__(
        self, *args: str, input: str | None = None, check_rc: int | None = None, timeout: float = CALL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run one CLI call to completion; with `check_rc`, insist on that exit code."""
        proc = subprocess.run(
            self.argv(*args),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        if check_rc is not None:
            assert proc.returncode == check_rc, describe(proc, f"expected exit {check_rc}")
        return proc

    def json(self, *args: str, input: str | None = None) -> Any:
        """Run with `--json`, insist on success, and return the one document on stdout."""
        # Before `--`: anything after it belongs to the command being run.
        split = args.index("--") if "--" in args else len(args)
        proc = self(*args[:split], "--json", *args[split:], input=input, check_rc=0)
        return parse_json(proc.stdout)

    def error(self, proc: subprocess.CompletedProcess[str], exit_code: int, code: str) -> dict[str, Any]:
        """Check a failed `--json` call: its exit code, error code and non-empty hint; return the error."""
        assert proc.returncode == exit_code, describe(proc, f"expected exit {exit_code}")
        error = error_document(proc.stderr)
        assert error["code"] == code, describe(proc, f"expected error code {code}")
        assert error["message"], describe(proc, "error without a message")
        assert error["hint"], describe(proc, "error without a hint")
        return error

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def finish(self, proc: subprocess.Popen[str], timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Wait for a `popen` call with a deadline (killing it past that) and return its outcome."""
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def create(self, *args: str) -> str:
        """Create a workspace (extra `args` go to `workspace create`) and return its id."""
        proc = self("workspace", "create", "debian:12", *args, "--id-only", check_rc=0)
        return proc.stdout.strip()

    def workspace_dirs(self) -> list[str]:
        """What is left on disk under `$ROOST_HOME/workspaces`."""
        root = self.home / "workspaces"
        return sorted(os.listdir(root)) if root.exists() else []

    def record_path(self, ws_id: str) -> Path:
        return self.home / "workspaces" / ws_id / "workspace.json"

    def record(self, ws_id: str) -> dict[str, Any]:
        """The workspace's on-disk record, which must always parse."""
        return json.loads(self.record_path(ws_id).read_text())  # type: ignore[no-any-return]


def describe(proc: subprocess.CompletedProcess[str], what: str) -> str:
    return f"{what}: {proc.args[3:]} exited {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not one JSON document: {exc}\n{text!r}") from None


def error_document(stderr: str) -> dict[str, Any]:
    """The `{"error": {...}}` line a `--json` call writes to stderr (warnings may precede it)."""
    for line in reversed(stderr.splitlines()):
        if line.startswith("{"):
            error = parse_json(line)["error"]
            assert set(error) >= {"code", "message", "hint"}, error
            return error  # type: ignore[no-any-return]
    raise AssertionError(f"no JSON error document on stderr: {stderr!r}")


def delete_leftovers(cli: RoostCli) -> None:
    """Delete whatever a test left (a failed one skips its own cleanup), so no agent outlives it."""
    for ws_id in cli.workspace_dirs():
        cli("workspace", "delete", ws_id, "--force")


def make_seed(root: Path) -> Path:
    """A small project: a top-level file, a subdirectory, and a source file to patch."""
    (root / "sub").mkdir(parents=True)
    (root / "seeded.txt").write_text("seeded\n")
    (root / "sub" / "inner.txt").write_text("inner\n")
    (root / "greeting.py").write_text('def greet():\n    return "hello"\n\n\nprint(greet())\n')
    return root
