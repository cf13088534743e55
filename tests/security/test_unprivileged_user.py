"""roost as a normal user: a sandbox's root is that user (never host root), and delete leaves nothing.

The first test needs root, to act as the test user, and what
`scripts/test-unprivileged.sh --prepare-only` makes (`make images` runs it):
the user with subordinate ids, a venv from Debian's python3 that the user
can read, and the user's own image cache. It drives the CLI as that user.

The second runs wherever the sandbox does. It matters most in the
unprivileged run (scripts/test-unprivileged.sh): there roost's user cannot
itself delete what the workspace gave to other ids or locked.

Harmless when they fail: everything is written under a state directory made
for the test (removed at teardown), inside the workspace, or in its layers;
processes are ended only through `roost workspace delete`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import RoostCli, delete_leftovers
from helpers import pids_with_env
from roost import Roost
from roost.backends.processes import WORKSPACE_MARKER
from roost.images.cache import ImageCache
from roost.images.freshness import current_image
from roost.userns import SUBUID, subordinate_range, user_names

REPO = Path(__file__).resolve().parents[2]
PREPARED = REPO / ".cache" / "unprivileged"
TEST_USER = os.environ.get("ROOST_TEST_USER", "roost-unpriv")
PREPARE_HINT = "run scripts/test-unprivileged.sh --prepare-only (`make images` does, as root)"
# Files owned by ids other than the workspace's root, in the upper layer and in /workspace,
# with a directory nobody may enter: what roost's user cannot remove without help.
GIVE_AWAY = (
    "mkdir -p /etc/roost-probe/locked /workspace/given/locked"
    " && touch /etc/roost-probe/locked/f /workspace/given/locked/f"
    " && chown -R 1000:1000 /etc/roost-probe /workspace/given"
    " && chmod 0 /etc/roost-probe/locked /workspace/given/locked"
)


def _not_prepared() -> str | None:
    """Why the test user's run cannot happen here, or None."""
    if os.geteuid() != 0:
        return "needs root to run roost as another user"
    if shutil.which("runuser") is None or shutil.which("useradd") is None:
        return "runuser or useradd is not installed"
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        return f"no user {TEST_USER}: {PREPARE_HINT}"
    if not (PREPARED / "venv" / "bin" / "python").exists():
        return f"no venv for {TEST_USER}: {PREPARE_HINT}"
    if current_image(ImageCache(PREPARED / "images"), "debian:12") is None:
        return f"{TEST_USER} has no debian:12 image: {PREPARE_HINT}"
    return None


class UserCli(RoostCli):
    """The CLI run as the test user, from the venv it can read, on the sandbox backend."""

    def __init__(self, home: Path, user: pwd.struct_passwd) -> None:
        super().__init__(home)
        self.user = user
        self.env.update(
            {
                "HOME": user.pw_dir,
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                "ROOST_BACKEND": "sandbox",
                "ROOST_IMAGES": str(PREPARED / "images"),
            }
        )

    def argv(self, *args: str) -> list[str]:
        assigned = [f"{key}={value}" for key, value in self.env.items()]
        python = str(PREPARED / "venv" / "bin" / "python")
        return ["runuser", "-u", self.user.pw_name, "--", "env", "-i", *assigned, python, "-m", "roost", *args]


@pytest.fixture
def user_cli() -> Iterator[UserCli]:
    """The test user's CLI on a fresh state directory in its home, removed (workspaces first) afterwards."""
    reason = _not_prepared()
    if reason is not None:
        pytest.skip(reason)
    user = pwd.getpwnam(TEST_USER)
    home = Path(user.pw_dir) / f"roost-test-{uuid.uuid4().hex[:12]}"
    subprocess.run(["runuser", "-u", user.pw_name, "--", "mkdir", "-m", "0700", str(home)], check=True, timeout=30)
    cli = UserCli(home, user)
    try:
        yield cli
    finally:
        delete_leftovers(cli)
        shutil.rmtree(home)


def _host_uid(pid: int) -> int:
    """The effective uid of `pid` as the host sees it."""
    with open(f"/proc/{pid}/status") as fh:
        line = next(line for line in fh if line.startswith("Uid:"))
    return int(line.split()[2])


def test_a_normal_users_sandbox_runs_as_that_user_never_host_root_and_delete_leaves_nothing(
    user_cli: UserCli,
) -> None:
    user = user_cli.user
    subordinate = subordinate_range(SUBUID, user_names(user.pw_uid), 65535)
    assert subordinate is not None, f"{TEST_USER} lost its subordinate ids"
    ws = user_cli.create()

    inside = user_cli("workspace", "exec", ws, "--", "sh", "-c", "id -u; cat /proc/self/uid_map", check_rc=0)
    lines = inside.stdout.split("\n")
    assert lines[0] == "0"  # root inside...
    uid_map = [line.split() for line in lines[1:] if line.strip()]
    # ...is the user on the host, and every other id one of the user's subordinate ids.
    assert uid_map == [["0", str(user.pw_uid), "1"], ["1", str(subordinate[0]), "65535"]]
    user_cli(
        "workspace",
        "service",
        "start",
        ws,
        "idler",
        "--",
        "setpriv",
        "--reuid=1000",
        "--regid=1000",
        "--clear-groups",
        "sleep",
        "600",
        check_rc=0,
    )
    user_cli("workspace", "exec", ws, "--", "sh", "-c", GIVE_AWAY, check_rc=0)

    owners = {_host_uid(pid) for pid in pids_with_env(WORKSPACE_MARKER, ws)}
    assert user.pw_uid in owners  # the agent
    assert subordinate[0] + 999 in owners  # the service, uid 1000 inside
    assert owners <= {user.pw_uid} | set(range(subordinate[0], subordinate[0] + 65535)), owners

    user_cli("workspace", "delete", ws, check_rc=0)

    assert pids_with_env(WORKSPACE_MARKER, ws) == set()
    assert user_cli.workspace_dirs() == []


def test_delete_frees_files_the_workspace_gave_to_other_ids_or_locked(roost: Roost, backend: str) -> None:
    if backend == "mock":
        pytest.skip("the mock backend's / is the host's own: nothing to give away there")
    ws = roost.create_workspace("debian:12")
    ws_dir = roost.home / "workspaces" / ws.id

    given = ws.exec(["sh", "-c", GIVE_AWAY])
    assert given.exit_code == 0, given.stderr
    ws.delete()

    assert not ws_dir.exists()
