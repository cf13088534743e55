"""Trees for the scale benchmarks: host seeds, trees written inside a workspace, git beside them.

Files hold hex text of random bytes (patches stay text, nothing compresses
away), `PER_DIR` to a directory, like a package tree. A tree written inside
a workspace is made by `exec` of a short Python program, so it lands the same
way on every backend, owned by the workspace's own user.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from roost import Workspace

PER_DIR = 100
GIT_TIMEOUT = 600


def write_host_tree(root: Path, files: int, total_bytes: int, seed: int = 7) -> int:
    """`files` files of about total_bytes/files bytes under `root`; the bytes written."""
    rng = random.Random(seed)
    size = max(1, total_bytes // files)
    written = 0
    for index in range(files):
        directory = root / f"pkg{index // PER_DIR:03d}"
        if index % PER_DIR == 0:
            directory.mkdir(parents=True)
        data = rng.randbytes((size + 1) // 2).hex()[:size].encode()
        (directory / f"m{index:05d}.txt").write_bytes(data)
        written += len(data)
    return written


def _tree_program(top: str, files: int, size: int, salt: int) -> str:
    return (
        "import os, random\n"
        f"rng = random.Random({salt})\n"
        f"for i in range({files}):\n"
        f"    d = '{top}/d%03d' % (i // {PER_DIR})\n"
        f"    if i % {PER_DIR} == 0: os.makedirs(d)\n"
        f"    with open('%s/f%05d.txt' % (d, i), 'w') as fh: fh.write(rng.randbytes({(size + 1) // 2}).hex()[:{size}])\n"
    )


def write_in_workspace(ws: Workspace, top: str, files: int, total_bytes: int, salt: int) -> float:
    """Write `files` new files (about `total_bytes` in all) under `top` in the workspace; seconds it took.

    Raises:
        RuntimeError: the program failed.
    """
    started = time.perf_counter()
    done = ws.exec(["python3", "-c", _tree_program(top, files, max(1, total_bytes // files), salt)], timeout=600)
    if done.exit_code != 0:
        raise RuntimeError(f"writing {files} files in the workspace failed: {done.stderr[-500:]}")
    return time.perf_counter() - started


def count_in_workspace(ws: Workspace, top: str) -> int:
    done = ws.exec(["python3", "-c", f"import os; print(sum(len(f) for _, _, f in os.walk('{top}')))"])
    if done.exit_code != 0:
        raise RuntimeError(f"counting files failed: {done.stderr[-500:]}")
    return int(done.stdout.strip())


class GitBeside:
    """A git repository whose work tree is a workspace's directory on the host and whose .git is elsewhere,
    so the workspace never sees it."""

    def __init__(self, work_tree: Path) -> None:
        self.git_dir = Path(tempfile.mkdtemp(prefix="roost-bench-git-"))
        self.work_tree = work_tree
        self.git("init", "-q")
        self.git("config", "core.untrackedCache", "false")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(self.work_tree),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        }
        done = subprocess.run(
            ["git", "-c", f"safe.directory={self.work_tree}", *args],
            cwd=self.work_tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
        return done.stdout

    def commit_all(self) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", "baseline")

    def add_and_stat(self) -> float:
        """`git add -A && git diff --cached --stat`, from an index reset to the baseline commit; seconds."""
        self.git("read-tree", "HEAD")
        started = time.perf_counter()
        self.git("add", "-A")
        self.git("diff", "--cached", "--stat")
        return time.perf_counter() - started

    def close(self) -> None:
        subprocess.run(["rm", "-rf", "--", str(self.git_dir)], timeout=GIT_TIMEOUT, check=False)
