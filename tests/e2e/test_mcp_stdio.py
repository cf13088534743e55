"""`roost mcp serve` driven over stdio by the real MCP client, against the mock backend.

The server runs as `python -m roost.mcp` (the program `roost mcp serve` becomes)
in a subprocess with its own ROOST_HOME, and once as `roost mcp serve` itself;
every wait has a deadline.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp_helpers import ROOST_MCP_SERVE, call, call_error, mcp_session, text_of

from roost import Roost

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 20.0
MARKER = re.compile(
    r"\[\.\.\. (\d+) bytes omitted; read the rest with workspace_logs .*exec_id=(\d+) stream=stdout offset=(\d+)"
)


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    (root / "repo").mkdir(parents=True)
    (root / "repo" / "README").write_text("seeded\n")
    return root


async def test_each_profile_exposes_its_tools(mcp_home: Path, allowed: Path, errlog: TextIO) -> None:
    names: dict[str, set[str]] = {}

    async def list_tools(profile: str) -> None:
        async with mcp_session(profile, mcp_home, errlog, allow_root=allowed) as session:
            names[profile] = {tool.name for tool in (await session.list_tools()).tools}

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            for profile in ("run", "core", "full"):
                tg.start_soon(list_tools, profile)

    assert names["run"] == {"run"}
    core_expected = {"workspace_create", "workspace_exec", "workspace_logs", "file_read", "patch_apply", "env_list"}
    assert core_expected | {"run"} <= names["core"]
    assert names["core"] <= names["full"]
    assert not {name for name in names["core"] if name.startswith(("shell_", "service_", "secret_"))}


async def test_roost_mcp_serve_becomes_the_same_server_with_every_option_passed_on(
    tmp_path: Path, mcp_home: Path, allowed: Path, errlog: TextIO
) -> None:
    # What clients are configured to launch. The state directory comes from the CLI's own --home
    # (the environment names another one), the allowed root from --allow-root.
    unused_home = tmp_path / "env-home"
    serve = (ROOST_MCP_SERVE[0], ROOST_MCP_SERVE[1], "--home", str(mcp_home), *ROOST_MCP_SERVE[2:])
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog, allow_root=allowed) as session:
            expected = {tool.name for tool in (await session.list_tools()).tools}
        async with mcp_session("core", unused_home, errlog, allow_root=allowed, program=serve) as session:
            assert {tool.name for tool in (await session.list_tools()).tools} == expected
            info = await call(session, "workspace_create", name="via-cli", seed_path=str(allowed / "repo"))
            with Roost(home=mcp_home, backend="mock") as roost:
                assert [ws.id for ws in roost.list_workspaces()] == [info["id"]]
            result = await call(session, "workspace_exec", workspace="via-cli", command="cat README")
            assert (result["exit_code"], result["stdout"]) == (0, "seeded\n")
            await call(session, "workspace_delete", workspace="via-cli")
    assert not unused_home.exists()


async def test_exec_returns_structured_output_and_big_output_pages_back_in_full(
    mcp_home: Path, allowed: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog, allow_root=allowed) as session:
            info = await call(session, "workspace_create", name="e2e", seed_path=str(allowed / "repo"))
            assert info["state"] == "running"
            assert str(allowed) not in json.dumps(info)

            result = await call(session, "workspace_exec", workspace="e2e", command="cat README && echo hi >&2")
            assert (result["exit_code"], result["stdout"], result["stderr"]) == (0, "seeded\n", "hi\n")
            assert result["timed_out"] is False

            big = await call(
                session, "workspace_exec", workspace=info["id"], command="python3 -c \"print('x'*200000)\""
            )
            assert big["stdout_truncated_for_model"] is True
            assert big["stdout_bytes"] == 200001
            assert len(big["stdout"]) < 17 * 1024
            match = MARKER.search(big["stdout"])
            assert match, big["stdout"][8000:8400]
            omitted, exec_id, offset = (int(group) for group in match.groups())
            assert exec_id == big["exec_id"]

            middle = ""
            next_offset: int | None = offset
            while next_offset is not None and len(middle) < omitted:
                window = await call(
                    session, "workspace_logs", workspace="e2e", exec_id=exec_id, offset=next_offset, max_bytes=65536
                )
                middle += window["data"]
                next_offset = window["next_offset"]
            assert middle[:omitted] == "x" * omitted

            history = await call(session, "workspace_logs", workspace="e2e")
            assert [entry["exec_id"] for entry in history["execs"]] == [1, 2]

            assert await call(session, "workspace_delete", workspace="e2e") == {"id": info["id"], "deleted": True}
            assert (await call(session, "workspace_list"))["workspaces"] == []


async def test_failures_come_back_as_tool_errors_with_codes(mcp_home: Path, allowed: Path, errlog: TextIO) -> None:
    outside = allowed.parent / "outside"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog, allow_root=allowed) as session:
            error = await call_error(session, "workspace_exec", workspace="no-such-workspace", command="true")
            assert error["code"] == "workspace_not_found"

            error = await call_error(session, "workspace_create", seed_path=str(outside))
            assert error["code"] == "path_not_allowed"
            assert "--allow-root" in error["hint"]
            error = await call_error(session, "workspace_create", seed_path=str(allowed / "escape"))
            assert error["code"] == "path_not_allowed"
            assert "symbolic link" in error["hint"]
            assert (await call(session, "workspace_list"))["workspaces"] == []

            error = await call_error(session, "workspace_exec", workspace="x", command="true", max_output_chars=10)
            assert error["code"] == "invalid_argument"


async def test_long_exec_does_not_stall_other_calls_and_timeouts_keep_partial_output(
    mcp_home: Path, allowed: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("full", mcp_home, errlog, allow_root=allowed) as session:
            ws = (await call(session, "workspace_create"))["id"]
            waiting: dict[str, Any] = {}

            async def wait_for_go() -> None:
                waiting.update(
                    await call(
                        session,
                        "workspace_exec",
                        workspace=ws,
                        command="until [ -e go ]; do sleep 0.01; done; echo released",
                        timeout=15,
                    )
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_go)
                # The exec above only finishes once these calls have been served.
                assert (await call(session, "workspace_status", workspace=ws))["id"] == ws
                await call(session, "file_write", workspace=ws, path="go", content="")
            assert waiting["stdout"] == "released\n"

            result = await session.call_tool(
                "workspace_exec", {"workspace": ws, "command": "echo partial; sleep 30", "timeout": 0.5}
            )
            assert not result.is_error
            assert isinstance(result.structured_content, dict)
            assert result.structured_content["timed_out"] is True
            assert result.structured_content["stdout"] == "partial\n"
            assert "timed out" in text_of(result)

            await call(session, "workspace_delete", workspace=ws)
