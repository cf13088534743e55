"""The docs run as written: every console, shell and Python block of README.md, docs/*.md
and docs/recipes/*.md, on the sandbox backend where this host has it, else on mock (the
test id says which).

One test per doc runs its blocks in order in one state directory (doc_runner), so a
block may use what an earlier one made, as a reader going down the page would. A block
that cannot run here says why in the doc (`<!-- docs-check: skip (REASON) -->`) and is
reported as a skipped test with that reason; so is a sandbox-only block on mock.

Imports: doc_blocks, doc_runner, cli_helpers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import backends_here
from doc_blocks import Block, blocks_of
from doc_runner import DocSession

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("docs/recipes/*.md")])
BACKEND = backends_here()[-1]
# Docs whose blocks take more than a few seconds together.
SLOW_DOCS = {"docs/cli.md", "docs/changes.md", "docs/mcp.md", "docs/shells.md", "README.md"}


def _skip_reason(block: Block) -> str | None:
    if block.skip:
        return block.skip
    if block.sandbox_only and BACKEND != "sandbox":
        return f"needs the sandbox backend (this host runs {BACKEND})"
    return None


def _doc_params() -> list[object]:
    params: list[object] = []
    for path in DOCS:
        doc = path.relative_to(ROOT).as_posix()
        if any(_skip_reason(block) is None for block in blocks_of(path, ROOT)):
            marks = [pytest.mark.slow] if doc in SLOW_DOCS else []
            params.append(pytest.param(path, id=f"{BACKEND}-{doc}", marks=marks))
    return params


def _skipped_params() -> list[object]:
    return [
        pytest.param(block, reason, id=f"{BACKEND}-{block.where}")
        for path in DOCS
        for block in blocks_of(path, ROOT)
        if (reason := _skip_reason(block)) is not None
    ]


@pytest.mark.parametrize("path", _doc_params())
def test_doc_runs_as_written(path: Path, tmp_path: Path) -> None:
    session = DocSession(tmp_path, BACKEND)
    failures: list[str] = []
    try:
        for block in blocks_of(path, ROOT):
            if _skip_reason(block) is None:
                failures += [f"{block.where} ({block.lang}): {why}" for why in session.run(block)]
    finally:
        session.close()
    assert not failures, f"{len(failures)} failure(s) on {BACKEND}:\n\n" + "\n\n".join(failures)


@pytest.mark.parametrize(("block", "reason"), _skipped_params())
def test_doc_block_not_run_here(block: Block, reason: str) -> None:
    pytest.skip(f"{block.where} not run: {reason}")


def test_every_doc_is_checked() -> None:
    """A doc the checker would not find (a new directory, a misspelled fence) fails here."""
    found = {path.relative_to(ROOT).as_posix() for path in DOCS}
    assert {"README.md", "docs/cli.md", "docs/sdk.md", "docs/mcp.md"} <= found
    assert all(block.lang for path in DOCS for block in blocks_of(path, ROOT))
