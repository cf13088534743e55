"""The MCP server class roost serves: the SDK's `MCPServer`, with failures before a tool runs in roost's error shape.

Arguments that fail a tool's schema become `invalid_argument`, an unknown
tool name `unknown_tool`, both as the tool errors `roost.mcp.results` makes
for failures inside a tool. So does `true` or `false` given for a number:
pydantic's lax mode would read it as 1 or 0.

This module imports `roost.errors`, `roost.mcp.results`, the `mcp` server and types, pydantic and the standard library.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from roost.errors import InvalidArgument, RoostError
from roost.mcp.results import error_result


class RoostMCPServer(MCPServer):
    """An `MCPServer` whose argument and unknown-tool failures use roost's error shape too."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        schema = next((tool.input_schema for tool in await self.list_tools() if tool.name == name), None)
        refused = _boolean_for_number(name, schema, arguments) if schema is not None else None
        if refused is not None:
            return error_result(refused)
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                return error_result(_invalid_arguments(name, exc.__cause__))
            if name not in {tool.name for tool in await self.list_tools()}:
                return error_result(
                    RoostError(f"no tool named {name!r}", code="unknown_tool", hint="list the tools with tools/list")
                )
            raise


def _invalid_arguments(tool: str, error: ValidationError) -> RoostError:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'arguments'}: {item['msg']}" for item in error.errors()
    )
    return InvalidArgument(f"invalid arguments for {tool}: {problems}", hint="check the tool's input schema")


def _boolean_for_number(tool: str, schema: dict[str, Any], arguments: dict[str, Any]) -> RoostError | None:
    """The error for the first argument that is true/false where the schema wants no boolean."""
    properties = schema.get("properties", {})
    for key, value in arguments.items():
        if isinstance(value, bool) and key in properties and not _accepts_boolean(properties[key]):
            return InvalidArgument(
                f"invalid arguments for {tool}: {key}: expected a number, got {str(value).lower()}",
                hint="check the tool's input schema",
            )
    return None


def _accepts_boolean(schema: dict[str, Any]) -> bool:
    kinds = schema.get("type")
    if kinds == "boolean" or (isinstance(kinds, list) and "boolean" in kinds):
        return True
    if "type" not in schema and not any(k in schema for k in ("anyOf", "oneOf", "allOf", "$ref", "enum", "const")):
        return True  # an unconstrained parameter takes anything
    return any(_accepts_boolean(option) for option in [*schema.get("anyOf", []), *schema.get("oneOf", [])])
