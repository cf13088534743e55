"""`workspace disk` through the CLI (a subprocess) and MCP (a real client over stdio), on mock.

Both faces refuse a running workspace with `workspace_running` and their own spelling of the way
out, list with paging, read by offset, export under their rules, and answer bad input with a code
and a hint, never a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

import anyio
import pytest
from cli_helpers import RoostCli
from mcp_helpers import call, call_error, mcp_session

pytestmark = pytest.mark.e2e

DEADLINE = 60.0
SETUP = (
    "mkdir -p logs && echo 'build ok' > logs/build.log && ln -s /etc/passwd logs/passwd"
    " && printf odd > \"$(printf 'caf\\351')\" && truncate -s 1M sparse && printf END >> sparse"
)


def _stopped(roost: RoostCli) -> str:
    ws = roost.create()
    roost("workspace", "exec", ws, "--", "sh", "-c", SETUP, check_rc=0)
    roost("workspace", "stop", ws, check_rc=0)
    return ws


def test_cli_lists_reads_exports_and_measures_a_stopped_workspace(roost: RoostCli, tmp_path: Path) -> None:
    ws = _stopped(roost)
    listing = roost.json("workspace", "disk", "list", ws, "-r")
    by_path = {entry["path"]: entry for entry in listing["entries"]}
    assert by_path["/workspace/logs/passwd"]["target"] == "/etc/passwd"
    assert '"/workspace/caf\\351"' in by_path
    page = roost.json("workspace", "disk", "list", ws, "-r", "--limit", "2")
    assert len(page["entries"]) == 2 and page["next_cursor"]
    rest = roost.json("workspace", "disk", "list", ws, "-r", "--cursor", page["next_cursor"])
    assert [e["path"] for e in page["entries"] + rest["entries"]] == [e["path"] for e in listing["entries"]]
    human = roost("workspace", "disk", "list", ws, "logs", check_rc=0).stdout
    assert "/workspace/logs/passwd -> /etc/passwd" in human

    read = roost("workspace", "disk", "read", ws, "sparse", "--offset", str(1024 * 1024), check_rc=0)
    assert read.stdout == "END"
    assert roost("workspace", "disk", "read", ws, "logs/build.log", check_rc=0).stdout == "build ok\n"

    exported = roost.json("workspace", "disk", "export", ws, "logs", "--output", str(tmp_path / "logs"))
    assert (tmp_path / "logs" / "build.log").read_text() == "build ok\n"
    assert [s["reason"] for s in exported["skipped"]] == ["absolute_symlink"]
    assert not os.path.lexists(tmp_path / "logs" / "passwd")

    usage = roost.json("workspace", "disk", "usage", ws, "--top", "2")
    assert usage["top"][0]["path"] == "/workspace" and len(usage["top"]) == 2
    assert "FILES" in roost("workspace", "disk", "usage", ws, check_rc=0).stdout


def test_cli_refuses_a_running_workspace_and_bad_input_with_codes_and_hints(roost: RoostCli) -> None:
    ws = roost.create()
    running = roost.error(roost("workspace", "disk", "list", ws, "--json"), 4, "workspace_running")
    assert f"roost workspace stop {ws}" in running["hint"]
    roost("workspace", "stop", ws, check_rc=0)
    roost.error(roost("workspace", "disk", "read", ws, "nope", "--json"), 3, "path_not_found")
    roost.error(roost("workspace", "disk", "read", ws, "x", "--offset", "-1", "--json"), 2, "invalid_argument")
    roost.error(roost("workspace", "disk", "check", ws, "--json"), 2, "unsupported")
    plain = roost("workspace", "disk", "grow", ws, "--size", "1G")
    assert plain.returncode != 0 and "Traceback" not in plain.stderr and "unsupported" in plain.stderr


@pytest.mark.anyio
async def test_mcp_disk_tools_page_read_export_and_refuse_a_running_workspace(
    mcp_home: Path, errlog: TextIO, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog, allow_root=allowed) as session:
            ws = (await call(session, "workspace_create"))["id"]
            running = await call_error(session, "disk_list", workspace=ws)
            assert running["code"] == "workspace_running" and "call workspace_stop" in running["hint"]
            await call(session, "workspace_exec", workspace=ws, command=SETUP)
            await call(session, "workspace_stop", workspace=ws)

            first = await call(session, "disk_list", workspace=ws, recursive=True, max_entries=2)
            assert first["truncated"] and "cursor=" in first["more"]
            rest = await call(session, "disk_list", workspace=ws, recursive=True, cursor=first["next_cursor"])
            paths = [e["path"] for e in first["entries"] + rest["entries"]]
            assert '"/workspace/caf\\351"' in paths and "/workspace/logs/passwd" in paths
            odd = await call(session, "disk_read", workspace=ws, path='"/workspace/caf\\351"')
            assert odd["content"] == "odd"
            tail = await call(session, "disk_read", workspace=ws, path="sparse", offset=1024 * 1024)
            assert (tail["content"], tail["eof"]) == ("END", True)
            exported = await call(
                session, "disk_export", workspace=ws, path="logs", output_path="logs.tar", format="tar"
            )
            assert exported["path"] == "logs.tar" and exported["files"] == 1 and (allowed / "logs.tar").exists()
            usage = await call(session, "disk_usage", workspace=ws, top=1)
            assert [d["path"] for d in usage["top"]] == ["/workspace"]
            bad = await call_error(session, "disk_read", workspace=ws, path="sparse", offset=-5)
            assert bad["code"] == "invalid_argument"
            unsupported = await call_error(session, "disk_grow", workspace=ws, size="1G")
            assert unsupported["code"] == "unsupported"
            escaping = await call_error(session, "disk_export", workspace=ws, path="logs", output_path="/etc/x")
            assert escaping["code"] != "internal", json.dumps(escaping)
            await call(session, "workspace_delete", workspace=ws, force=True)
