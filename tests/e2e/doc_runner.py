"""Runs the blocks of one doc as a reader would: one shell per block, one state directory per doc.

A `DocSession` is a temporary directory holding a `$ROOST_HOME` (its images are the
machine's shared cache), a `$HOME`, and the directory blocks run in, `work/`, where
`./repo` is a small git repository (a Makefile whose `test` passes, `src/calc.py`,
`tests/test_calc.py`, a README). `roost` on `$PATH` is this checkout's.

* console: the `$ ` lines run in order in one bash (stderr with stdout, as a terminal
  shows them); each must exit 0 (show `; echo $?` for one that does not) and its output
  must fit what the doc shows under it (`doc_blocks.output_matches`).
* sh / bash: the whole block under `bash -euo pipefail`; it must exit 0.
* python: the block in a fresh interpreter, after a preamble that binds `roost` (a
  `Roost()`) and, when a workspace named `demo` exists, `ws` to it; a block with a
  top-level `await` runs inside `asyncio.run`.

Imports: doc_blocks, cli_helpers, helpers, roost.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

from cli_helpers import home_with_shared_images
from doc_blocks import Block, output_matches

from helpers import delete_all_workspaces
from roost.client import Roost

# Generous: a block may wait on the shared image cache while another test holds its lock, under xdist load.
BLOCK_TIMEOUT = 180.0

_REPO_FILES = {
    "README.md": "# calc\n\nA tiny calculator.\n",
    "Makefile": "test:\n\tpython3 -m unittest discover -s tests -q\n",
    "src/calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": textwrap.dedent(
        """\
        import sys
        import unittest

        sys.path.insert(0, "src")
        from calc import add


        class TestAdd(unittest.TestCase):
            def test_add(self):
                self.assertEqual(add(2, 3), 5)


        def test_add():
            assert add(2, 3) == 5
        """
    ),
}

_PYTHON_PREAMBLE = """\
import threading
from roost import NotFound, Readiness, Roost, RoostError

roost = Roost()
try:
    ws = roost.workspace("demo")
except NotFound:
    pass
"""


def make_repo(path: Path, env: dict[str, str]) -> None:
    """The `./repo` the docs seed workspaces from: a committed git repository."""
    for name, text in _REPO_FILES.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "calc"]):
        subprocess.run(argv, cwd=path, env=env, check=True, capture_output=True)


class DocSession:
    """The state one doc's blocks share, on one backend."""

    def __init__(self, root: Path, backend: str) -> None:
        self.backend = backend
        self.home = home_with_shared_images(root / "roost-home")
        self.work = root / "work"
        # A server a block starts may get only $HOME (the mcp client passes a short list of variables):
        # its default home, $HOME/.local/share/roost, is this session's too.
        (root / "user" / ".local" / "share").mkdir(parents=True)
        (root / "user" / ".local" / "share" / "roost").symlink_to(self.home, target_is_directory=True)
        self.work.mkdir()
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root / "user"),
            "LANG": "C.UTF-8",
            "ROOST_HOME": str(self.home),
            "ROOST_BACKEND": backend,
            "GIT_AUTHOR_NAME": "Doc Reader",
            "GIT_AUTHOR_EMAIL": "reader@example.com",
            "GIT_COMMITTER_NAME": "Doc Reader",
            "GIT_COMMITTER_EMAIL": "reader@example.com",
            # The token the secrets examples store; not a real one.
            "GITHUB_TOKEN": "ghp_docsExampleNotARealToken0000",
        }
        make_repo(self.work / "repo", self.env)

    def close(self) -> None:
        with Roost(home=self.home, backend=self.backend) as client:
            delete_all_workspaces(client)

    def run(self, block: Block) -> list[str]:
        """Run `block`; what went wrong, one line each (empty when it ran as written)."""
        if block.lang == "console":
            return self._run_console(block)
        if block.lang == "python":
            return self._run_python(block)
        proc = self._bash("\n".join((*block.setup, block.text)), "-euo", "pipefail")
        return [] if proc.returncode == 0 else [f"exited {proc.returncode}:\n{_tail(proc.stdout)}"]

    def _bash(self, script: str, *options: str) -> subprocess.CompletedProcess[str]:
        return self._process(["bash", *options, "-c", script])

    def _process(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the doc's directory; past BLOCK_TIMEOUT it is killed and counts as exit 124."""
        try:
            return subprocess.run(
                argv,
                cwd=self.work,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=BLOCK_TIMEOUT,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
            return subprocess.CompletedProcess(argv, 124, f"{output}\n(still running after {BLOCK_TIMEOUT:.0f} s)")

    def _run_console(self, block: Block) -> list[str]:
        marker = f"@@docs-check-{secrets.token_hex(4)}"
        commands = block.commands()
        script = ["exec 2>&1", *block.setup]
        for index, command in enumerate(commands):
            script += [f"printf '\\n{marker} {index}\\n'", command.line, f"printf '\\n{marker} rc %d\\n' $?"]
        proc = self._bash("\n".join(script))
        failures = [] if proc.returncode == 0 else [f"the block's shell exited {proc.returncode}"]
        outputs = _split_outputs(proc.stdout, marker)
        for index, command in enumerate(commands):
            output, rc = outputs.get(index, ("", None))
            if rc != 0:
                failures.append(f"$ {command.line}\n  exited {rc}:\n{textwrap.indent(_tail(output), '    ')}")
            elif why := output_matches(command, output):
                failures.append(f"$ {command.line}\n  {why}")
        return failures

    def _run_python(self, block: Block) -> list[str]:
        body = block.text
        if "await " in body:
            body = "import asyncio\n\nasync def main():\n" + textwrap.indent(body, "    ") + "\nasyncio.run(main())\n"
        setup = self._bash("\n".join(block.setup)) if block.setup else None
        if setup is not None and setup.returncode != 0:
            return [f"setup exited {setup.returncode}:\n{setup.stdout}"]
        proc = self._process([sys.executable, "-c", _PYTHON_PREAMBLE + body])
        return [] if proc.returncode == 0 else [f"exited {proc.returncode}:\n{_tail(proc.stdout)}"]


def _tail(output: str, lines: int = 20) -> str:
    """The last lines of `output`, enough to see why without a page of usage text."""
    kept = output.splitlines()[-lines:]
    return "\n".join(kept) if len(kept) < lines else "...\n" + "\n".join(kept)


def _split_outputs(stdout: str, marker: str) -> dict[int, tuple[str, int | None]]:
    """Each command's output and exit status, from the markers the console script printed."""
    found: dict[int, tuple[str, int | None]] = {}
    index: int | None = None
    lines: list[str] = []
    for line in stdout.splitlines():
        if not line.startswith(marker + " "):
            lines.append(line)
            continue
        word = line.removeprefix(marker + " ")
        if word.startswith("rc ") and index is not None:
            found[index] = ("\n".join(lines).strip("\n"), int(word.removeprefix("rc ")))
            index = None
        elif word.isdigit():
            index, lines = int(word), []
    if index is not None:
        found[index] = ("\n".join(lines).strip("\n"), None)
    return found
