"""docs/results.md lists every field of each result object, and only those, in the order `to_dict()` gives them.

The workspace's `remedy` is not a field of its dict (its `hint` is); an exec result's rows marked
*MCP only* are the fields MCP adds for a model (`roost.mcp.output_caps.MODEL_FIELDS`).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from roost.mcp.output_caps import MODEL_FIELDS
from roost.models import (
    DiskCheck,
    DiskGrow,
    DiskUsage,
    ExecResult,
    ForkResult,
    ServiceInfo,
    ShellInfo,
    SnapshotInfo,
    WorkspaceInfo,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "results.md"
ROW = re.compile(r"^\| `(\w+)` \| [^|]+ \| (.*) \|$")


def _rows(cls: type) -> list[tuple[str, str]]:
    """The (field, meaning) rows of the section headed with `cls`'s name."""
    sections = re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)
    (section,) = [s for s in sections if s.splitlines()[0].endswith(f"(`{cls.__name__}`)")]
    return [(m.group(1), m.group(2)) for line in section.splitlines() if (m := ROW.match(line))]


def _dict_keys(cls: type) -> list[str]:
    names = [f.name for f in dataclasses.fields(cls)]
    return [name for name in names if name != "remedy"] + (["hint"] if cls is WorkspaceInfo else [])


@pytest.mark.parametrize(
    "cls", [WorkspaceInfo, ServiceInfo, ShellInfo, SnapshotInfo, ExecResult, DiskUsage, DiskCheck, DiskGrow, ForkResult]
)
def test_each_table_lists_the_fields_of_its_object(cls: type) -> None:
    rows = _rows(cls)
    everywhere = [name for name, meaning in rows if not meaning.startswith("*MCP only*")]
    mcp_only = {name for name, meaning in rows if meaning.startswith("*MCP only*")}
    assert everywhere == _dict_keys(cls)
    assert mcp_only == (set(MODEL_FIELDS) if cls is ExecResult else set())
