"""Every tool publishes an `outputSchema` derived from the result classes, and its results fit it.

The Python MCP client checks each successful result against the tool's schema, so every MCP test
that calls a tool checks that tool's schema too; these tests check the schemas themselves.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from roost.client import Roost
from roost.mcp.result_schemas import result_schema, type_schema
from roost.mcp.server import build_server
from roost.models import FileContent, WorkspaceInfo
from roost.serve_options import ServeOptions


def _tools(tmp_path: Path) -> dict[str, Any]:
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        server = build_server(ServeOptions(profile="full"), roost)
        return {tool.name: tool for tool in asyncio.run(server.list_tools())}


def test_every_tool_publishes_a_valid_object_schema_for_its_result(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    assert len(tools) > 40
    for name, tool in tools.items():
        assert tool.output_schema is not None, name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.output_schema["type"] == "object", name


def test_a_result_class_schema_is_exactly_its_dict(tmp_path: Path) -> None:
    with Roost(home=tmp_path / "home", backend="mock") as roost, roost.create_workspace("debian:12") as ws:
        ws.files.write("note.txt", "hello")
        results: list[tuple[type, dict[str, Any]]] = [
            (WorkspaceInfo, ws.info().to_dict()),
            (FileContent, ws.files.read("note.txt").to_dict()),
        ]
    for cls, value in results:
        data = json.loads(json.dumps(value))  # as it goes over the wire: tuples are arrays
        schema = result_schema(cls)
        assert set(schema["properties"]) == set(data) == set(schema["required"])
        jsonschema.validate(data, schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**data, "surprise": 1}, schema)


def test_a_field_type_the_schemas_cannot_describe_is_refused_at_startup() -> None:
    with pytest.raises(TypeError):
        type_schema(bytes)
