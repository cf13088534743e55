"""Every script in examples/ runs as a user would run it, and says what it promises.

Each runs as a separate process on the mock backend with its own temporary
ROOST_HOME and a deadline, and must exit 0 and print its key lines. A new
example needs an entry in EXPECTED, so none goes untested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 60.0

# Lines (substrings) each example must print on stdout.
EXPECTED: dict[str, tuple[str, ...]] = {
    "quickstart.py": ("exit 0: hello, roost", "timed_out=True", "workspaces left: 0"),
    "fork.py": (
        "not copied: 1 shell(s)",
        "try-1 (parent ws-",
        "services ['keeper']): fix 'plus', changed ['calc.py'], check passed",
        "fix 'minus', changed ['calc.py'], check failed",
        "kept ['try-1']; it still reads: return a + b",
        "workspaces left: ['try-1']",
        "fork example: ok",
    ),
    "mcp_client.py": ("exit 0: hello", "a failure is a tool error: workspace_not_found", "'deleted': True"),
    "shells.py": (
        "shell said: hi: hello from app.txt [in src]",
        "test -e missing.txt: exit 1",
        "waited for the pattern: ended by pattern",
        "sleep ended with status 130",
        "after resize: 24 80",
        "state closed",
        "shells example: ok",
    ),
    "services.py": (
        "service web: ready",
        "fetched: 200 hello from a roost service",
        "service broken: failed (readiness probe timed out",
        "service web: stopped",
        "services example: ok",
    ),
    "snapshots.py": (
        "exported a patch of 5 changed paths",
        *(("git apply --check on the seed: ok",) if shutil.which("git") else ()),
        "stopped services ['sleeper']",
        "after reset to baseline: no changes",
        "snapshots example: ok",
    ),
    "network_allowlist.py": (
        "mock refuses allowlist: network_unsupported",
        "workspaces left: 0",
        "network example: ok",
    ),
    "oci_image.py": (
        "python:3.12-slim -> docker.io/library/python:3.12-slim (OCI image python:3.12-slim)",
        "debian:12 -> roost catalog",
        "oci example: ok",
    ),
    "custom_env.py": (
        "a misspelled key is refused: invalid_recipe (unknown recipe key 'runn')",
        "custom env example: ok",
    ),
    "disk.py": (
        "while it runs: workspace_running",
        "symlink          11 /workspace/out/logs/passwd -> /etc/passwd",
        "read at offset 209715200: 'TAIL' (eof=True)",
        "exported 1 file; skipped ['passwd']",
        "log on the host: build ok",
        "check here: unsupported",
        "workspaces left: 0",
        "disk example: ok",
    ),
    "environments.py": ("debian:12-base", "doctor: default backend mock", "environments example: ok"),
    "secrets_env.py": (
        "the command printed: token is [redacted:API_TOKEN]",
        "inside, the variable holds the real value: match",
        "file mode: -r--------",
        "a command that did not ask: not set",
        "an unattached secret: secret_not_found",
        "workspaces left: 0",
        "secrets example: ok",
    ),
}


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ROOST_HOME": str(tmp_path / "roost-home"),
        "ROOST_BACKEND": "mock",
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    detail = f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, detail
    for line in EXPECTED[name]:
        assert line in proc.stdout, f"missing {line!r}: {detail}"
    # Examples clean up after themselves: no workspace is left in the home they were given.
    workspaces = tmp_path / "roost-home" / "workspaces"
    assert not workspaces.exists() or not any(workspaces.iterdir()), detail
