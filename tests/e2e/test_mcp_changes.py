"""The change tools over stdio with the real MCP client: diff, export, snapshots, reset.

The server runs as `python -m roost.mcp` with its own ROOST_HOME and one
allowed root; every wait has a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TextIO

import anyio
import pytest
from mcp_helpers import call, call_error, mcp_session

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("git") is None, reason="the seed is a real git repository"),
]

DEADLINE = 30.0
CHANGE_TOOLS = {"workspace_diff", "workspace_export", "snapshot_create", "snapshot_list", "snapshot_delete"}
CHANGE_EVERYTHING = (
    "sed -i 's/^b$/B/' notes.txt && printf '\\000\\001' > blob.bin && ln -s /etc/passwd passwd-link && "
    "rm gone.txt && chmod +x run.sh"
)


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    """The server's one allowed root, holding a small git repository to seed from."""
    repo = tmp_path / "allowed" / "repo"
    repo.mkdir(parents=True)
    for rel, text in {"notes.txt": "a\nb\nc\n", "gone.txt": "bye\n", "run.sh": "#!/bin/sh\n"}.items():
        (repo / rel).write_text(text)
        (repo / rel).chmod(0o644)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=s", "-c", "user.email=s@x", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=DEADLINE)
    return tmp_path / "allowed"


async def test_the_core_profile_diffs_exports_and_checkpoints_a_workspace(
    mcp_home: Path, allowed: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog, allow_root=allowed) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert CHANGE_TOOLS | {"workspace_reset"} <= tools

            await call(session, "workspace_create", name="agent", seed_path=str(allowed / "repo"))
            assert (await call(session, "workspace_exec", workspace="agent", command=CHANGE_EVERYTHING))[
                "exit_code"
            ] == 0

            diff = await call(session, "workspace_diff", workspace="agent")
            assert {c["path"]: c["change"] for c in diff["changes"]} == {
                "blob.bin": "added",
                "gone.txt": "deleted",
                "notes.txt": "modified",
                "passwd-link": "added",
                "run.sh": "mode_changed",
            }
            assert " a\n-b\n+B\n c\n" in diff["patch"] and "root:" not in diff["patch"]
            only = await call(session, "workspace_diff", workspace="agent", paths=["notes.txt"], stat=True)
            assert [c["path"] for c in only["changes"]] == ["notes.txt"] and only["patch"] == ""
            kept = await call(session, "workspace_diff", workspace="agent", stat=True, exclude=["*.bin", "/gone.txt"])
            assert sorted(c["path"] for c in kept["changes"]) == ["notes.txt", "passwd-link", "run.sh"]
            ignored = await call(session, "workspace_diff", workspace="agent", stat=True, gitignore=True)
            assert len(ignored["changes"]) == 5, "the seed has no .gitignore: only .git could go, and it is unchanged"

            exported = await call(
                session,
                "workspace_export",
                workspace="agent",
                path="/workspace",
                output_path="out.patch",
                format="patch",
            )
            assert exported["path"] == "out.patch" and exported["files"] == 4
            assert [(s["path"], s["reason"]) for s in exported["skipped"]] == [("passwd-link", "absolute_symlink")]
            copy = allowed / "copy"
            shutil.copytree(allowed / "repo", copy, symlinks=True)
            subprocess.run(
                ["git", "apply", str(allowed / "out.patch")],
                cwd=copy,
                check=True,
                capture_output=True,
                timeout=DEADLINE,
            )
            assert (copy / "notes.txt").read_text() == "a\nB\nc\n"
            assert not os.path.lexists(copy / "passwd-link"), "an absolute link never crosses to the host"
            assert not (copy / "gone.txt").exists() and os.access(copy / "run.sh", os.X_OK)

            snap = await call(session, "snapshot_create", workspace="agent", name="checkpoint")
            assert (snap["name"], snap["stored_bytes"]) == ("checkpoint", len("a\nB\nc\n") + 2)
            listed = await call(session, "snapshot_list", workspace="agent")
            assert [s["name"] for s in listed["snapshots"]] == ["baseline", "checkpoint"]

            await call(session, "workspace_exec", workspace="agent", command="echo later > later.txt")
            back = await call(session, "workspace_reset", workspace="agent", snapshot="checkpoint")
            assert (back["snapshot"], back["removed"]) == ("checkpoint", 1)
            assert (await call(session, "workspace_diff", workspace="agent", against="checkpoint"))["changes"] == []

            base = await call(session, "workspace_reset", workspace="agent")
            assert base["snapshot"] == "baseline"
            assert (await call(session, "workspace_diff", workspace="agent"))["changes"] == []
            assert await call(session, "snapshot_delete", workspace="agent", name="checkpoint") == {
                "deleted": "checkpoint"
            }


async def test_change_tools_fail_with_codes_and_exports_stay_under_the_allowed_roots(
    mcp_home: Path, allowed: Path, errlog: TextIO, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)
    (allowed / "taken").write_text("mine\n")
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog, allow_root=allowed) as session:
            await call(session, "workspace_create", name="agent", seed_path=str(allowed / "repo"))

            for target in (str(outside / "out"), "escape/out", "../outside/out"):
                error = await call_error(
                    session, "workspace_export", workspace="agent", path="notes.txt", output_path=target
                )
                assert error["code"] == "path_not_allowed", target
            assert os.listdir(outside) == []

            error = await call_error(
                session, "workspace_export", workspace="agent", path="notes.txt", output_path="taken"
            )
            assert error["code"] == "output_exists"
            assert (allowed / "taken").read_text() == "mine\n"

            error = await call_error(
                session, "workspace_export", workspace="agent", path="/etc/passwd", output_path="passwd"
            )
            assert error["code"] == "path_outside_workspace"

            error = await call_error(
                session, "workspace_export", workspace="agent", path="notes.txt", output_path="n", exclude=["*.txt"]
            )
            assert error["code"] == "path_excluded"
            error = await call_error(session, "workspace_diff", workspace="agent", exclude=["dir\\"])
            assert error["code"] == "invalid_argument"

            for tool, arguments, code in (
                ("workspace_diff", {"against": "never-made"}, "snapshot_not_found"),
                ("workspace_reset", {"snapshot": "never-made"}, "snapshot_not_found"),
                ("snapshot_delete", {"name": "never-made"}, "snapshot_not_found"),
                ("snapshot_delete", {"name": "baseline"}, "invalid_argument"),
                ("snapshot_create", {"name": "baseline"}, "snapshot_exists"),
                ("snapshot_create", {"name": "../up"}, "invalid_argument"),
            ):
                error = await call_error(session, tool, workspace="agent", **arguments)
                assert error["code"] == code, (tool, arguments)
                if code == "snapshot_not_found":  # the tool to call, never a command line
                    assert "call snapshot_list with workspace=" in error["hint"] and "roost " not in error["hint"]


async def test_reset_reports_the_services_it_stopped_and_the_shells_it_closed(
    mcp_home: Path, allowed: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("full", mcp_home, errlog, allow_root=allowed) as session:
            ws = (await call(session, "workspace_create", seed_path=str(allowed / "repo")))["id"]
            started = await call(
                session, "service_start", workspace=ws, name="ticker", command="sleep 600", ready_command="true"
            )
            assert started["state"] == "ready"
            shell = (await call(session, "shell_open", workspace=ws))["id"]

            result = await call(session, "workspace_reset", workspace=ws)

            assert result["stopped_services"] == ["ticker"]
            assert result["closed_shells"] == [shell]
            assert (await call(session, "workspace_diff", workspace=ws))["changes"] == []
