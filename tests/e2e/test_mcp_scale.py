"""MCP with results of any size and names that are bytes, over stdio with the real MCP client.

Listings and diffs past a tool's output cap come in pages: each says how
to get the rest (`next_cursor` and a `more` marker), and paging until done
sees every entry exactly once. Names that are not UTF-8 come quoted as git
quotes them and are taken back in that form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import anyio
import pytest
from mcp import ClientSession
from mcp_helpers import call, call_error, mcp_session

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEADLINE = 60.0
MANY = 3000


async def pages(session: ClientSession, tool: str, key: str, **arguments: Any) -> list[list[dict[str, Any]]]:
    """Every page of a paged tool's result, following next_cursor until there is none."""
    found: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = await call(session, tool, **arguments, **({"cursor": cursor} if cursor else {}))
        found.append(page[key])
        cursor = page["next_cursor"]
        if cursor is None:
            assert "more" not in page
            return found
        assert f"call {tool} again" in page["more"] and cursor in page["more"]
        assert len(found) < 100, "paging ends"


async def test_a_3000_entry_directory_and_diff_page_until_every_entry_was_seen_once(
    mcp_home: Path, errlog: TextIO
) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws = (await call(session, "workspace_create"))["id"]
            script = f"mkdir m && cd m && for i in $(seq -w 1 {MANY}); do echo $i > f$i; done"
            assert (await call(session, "workspace_exec", workspace=ws, command=script))["exit_code"] == 0

            listed = await pages(session, "file_list", "entries", workspace=ws, path="m")
            assert [len(page) for page in listed] == [500] * 6, "the default page is 500 entries"
            paths = [entry["path"] for page in listed for entry in page]
            assert paths == [f"/workspace/m/f{i:04d}" for i in range(1, MANY + 1)]

            changed = await pages(session, "workspace_diff", "changes", workspace=ws, stat=True, max_entries=1000)
            assert [len(page) for page in changed] == [1000, 1000, 1000, 1]
            seen = [c["path"] for page in changed for c in page]
            assert seen == ["m", *(f"m/f{i:04d}" for i in range(1, MANY + 1))]
            patched = await call(session, "workspace_diff", workspace=ws, max_entries=1000)
            assert patched["counts"] == {"added": MANY + 1} and patched["next_cursor"]
            assert len(patched["changes"]) < 1000, "a page also ends where its patch budget runs out"
            assert patched["patch"].count("diff --git ") == len(patched["changes"]) - 1  # the directory has none
            rules = {"exclude": ["m/f1*", "/m/f2*"], "gitignore": True}
            kept = await pages(session, "workspace_diff", "changes", workspace=ws, stat=True, max_entries=400, **rules)
            assert [len(page) for page in kept] == [400, 400, 201], "every page leaves the same paths out"
            assert [c["path"] for page in kept for c in page] == [
                "m",
                *(f"m/f{i:04d}" for i in [*range(1, 1000), 3000]),
            ]

            error = await call_error(session, "file_list", workspace=ws, path="m", cursor="not-a-cursor")
            assert error["code"] == "invalid_argument"


async def test_a_name_that_is_not_utf8_is_listed_quoted_and_taken_back_quoted(mcp_home: Path, errlog: TextIO) -> None:
    with anyio.fail_after(DEADLINE):
        async with mcp_session("core", mcp_home, errlog) as session:
            ws = (await call(session, "workspace_create"))["id"]
            made = await call(session, "workspace_exec", workspace=ws, command="printf 'odd\\n' > $'caf\\xe9.txt'")
            assert made["exit_code"] == 0

            (entry,) = (await call(session, "file_list", workspace=ws))["entries"]
            assert (entry["path"], entry["name"]) == ('"/workspace/caf\\351.txt"', '"caf\\351.txt"')
            read = await call(session, "file_read", workspace=ws, path=entry["path"])
            assert read["content"] == "odd\n" and read["path"] == entry["path"]
            await call(session, "file_write", workspace=ws, path=entry["path"], content="changed\n")
            diff = await call(session, "workspace_diff", workspace=ws)
            assert [c["path"] for c in diff["changes"]] == ['"caf\\351.txt"']
            assert 'diff --git "a/caf\\351.txt" "b/caf\\351.txt"' in diff["patch"]
            json.dumps(diff, ensure_ascii=False).encode("utf-8")  # nothing a strict client would refuse

            error = await call_error(session, "file_read", workspace=ws, path='"caf\\351')
            assert error["code"] == "invalid_argument"
            await call(session, "file_write", workspace=ws, path=entry["path"], content="x" * 4096)
            capped = await call(session, "file_read", workspace=ws, path=entry["path"], max_output_chars=1024)
            assert f"read the rest with file_read path={entry['path']} offset=" in capped["content"]
