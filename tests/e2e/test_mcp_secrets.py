"""Secrets over MCP, through the real client: a model uses only the secrets the operator allowed, by name,
and never sees a value (the server runs `python -m roost.mcp` on the mock backend, every wait bounded)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TextIO

import anyio
import pytest
from mcp_helpers import call, call_error, mcp_session

from roost import Roost

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 30.0


def _store(home: Path, **values: bytes) -> None:
    roost = Roost(home=home, backend="mock")
    for name, value in values.items():
        roost.secrets.set(name, value)
    roost.close()


async def test_a_model_attaches_and_uses_allowed_secrets_and_sees_only_redactions(
    mcp_home: Path, errlog: TextIO
) -> None:
    value = ("mcp-" + secrets.token_hex(10)).encode()
    _store(mcp_home, TOKEN=value, PRIVATE=b"private-" + value)
    with anyio.fail_after(DEADLINE):
        async with mcp_session("full", mcp_home, errlog, allow_secrets=["TOKEN"]) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert "workspace_secret_add" in tools and not any("set" in name and "secret" in name for name in tools)
            listed = await call(session, "secret_list")
            assert [entry["name"] for entry in listed["secrets"]] == ["TOKEN"]
            ws = (await call(session, "workspace_create", secrets=["TOKEN"]))["id"]
            ran = await call(
                session,
                "workspace_exec",
                workspace=ws,
                command='echo "$TOKEN"; cat "$F"',
                secret_env=["TOKEN"],
                secret_files=["TOKEN=F"],
            )
            assert ran["stdout"] == "[redacted:TOKEN]\n[redacted:TOKEN]"
            shell = await call(session, "shell_open", workspace=ws, secret_env=["TOKEN"])
            await call(session, "shell_write", workspace=ws, shell=shell["id"], input='echo "s=$TOKEN"')
            read = await call(session, "shell_read", workspace=ws, shell=shell["id"], wait_for_idle_ms=300)
            assert value.decode() not in str(read)
            started = await call(
                session,
                "service_start",
                workspace=ws,
                name="svc",
                command='echo "$TOKEN"; exit 3',
                secret_env=["TOKEN"],
            )
            assert value.decode() not in str(started)
            refused = await call_error(session, "workspace_secret_add", workspace=ws, secrets=["PRIVATE"])
            assert refused["code"] == "secret_not_allowed"
            used = await call_error(session, "workspace_exec", workspace=ws, command="true", secret_env=["PRIVATE"])
            assert used["code"] == "secret_not_allowed"
            attached = await call(session, "workspace_secret_list", workspace=ws)
            assert attached["secrets"] == [{"name": "TOKEN", "modes": ["env", "file"], "placeholder": None}]
            await call(session, "workspace_delete", workspace=ws)


async def test_a_server_allowed_no_secrets_refuses_every_one(mcp_home: Path, errlog: TextIO) -> None:
    _store(mcp_home, TOKEN=b"value-1234567")
    with anyio.fail_after(DEADLINE):
        async with mcp_session("full", mcp_home, errlog) as session:
            assert (await call(session, "secret_list"))["secrets"] == []
            refused = await call_error(session, "workspace_create", secrets=["TOKEN"])
            assert refused["code"] == "secret_not_allowed" and "ask whoever runs the MCP server" in refused["hint"]
            assert (await call(session, "workspace_list"))["workspaces"] == []
