"""Every remedy the source names is spelt by each face as something that face really has.

The operations are read from the source with `ast` (the second argument of every `Remedy`, the
`operation` of every `operator_remedy`, and the operations of `recovery`'s table): the SDK spelling
must resolve to a method of `Roost` or `Workspace`, the MCP spelling of a non-operator remedy must
name a tool of the full profile, and the CLI spelling must be a command roost's parser has.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost import Roost
from roost._handles import Workspace
from roost.cli.parser import build_parser
from roost.errors import Remedy
from roost.mcp.server import build_server
from roost.serve_options import ServeOptions

SRC = Path(__file__).resolve().parents[2] / "src" / "roost"


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _operations() -> set[tuple[str, bool, bool]]:
    """(operation, operator, on a workspace) for every remedy written in the source."""
    found: set[tuple[str, bool, bool]] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                operation = _string(node.args[1]) if len(node.args) > 1 else None
                on_workspace = len(node.args) > 2 or any(k.arg == "workspace" for k in node.keywords)
                if name in ("Remedy", "operator_remedy") and operation is not None:
                    found.add((operation, name == "operator_remedy", on_workspace and name == "Remedy"))
            elif isinstance(node, ast.Tuple) and path.name == "recovery.py" and len(node.elts) == 2:
                operation = _string(node.elts[1])  # recovery's table: (summary, operation) on the failing workspace
                if operation is not None and "_" in operation:
                    found.add((operation, False, True))
    return found


def _remedy(operation: str, operator: bool, on_workspace: bool) -> Remedy:
    return Remedy("fix it", operation, "ws-1" if on_workspace else None, operator=operator)


OPERATIONS = sorted(_operations())


def test_the_scan_finds_the_remedies_of_the_error_paths() -> None:
    names = {operation for operation, _, _ in OPERATIONS}
    assert {"workspace_restart", "workspace_start", "shell_list", "service_list", "env_list", "doctor"} <= names


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Roost, Workspace]]:
    with Roost(home=tmp_path_factory.mktemp("sdk") / "home", backend="mock") as roost:
        workspace = roost.create_workspace("debian:12")
        try:
            yield roost, workspace
        finally:
            workspace.delete(force=True)


@pytest.mark.parametrize(("operation", "operator", "on_workspace"), OPERATIONS)
def test_the_sdk_spelling_names_a_real_method(
    sdk: tuple[Roost, Workspace], operation: str, operator: bool, on_workspace: bool
) -> None:
    remedy = _remedy(operation, operator, on_workspace)
    owner, path = remedy.sdk_method()
    target: object = sdk[0] if owner == "roost" else sdk[1]
    for part in path.split("."):
        target = getattr(target, part)
    assert callable(target), remedy.method_call()
    assert remedy.as_method_call().startswith("fix it: `roost.")


def test_the_mcp_spelling_of_every_remedy_a_model_can_carry_out_names_a_tool(tmp_path: Path) -> None:
    with Roost(home=tmp_path / "home", backend="mock") as roost:
        server = build_server(ServeOptions(profile="full"), roost)
        tools = {tool.name for tool in asyncio.run(server.list_tools())}
    for operation, operator, on_workspace in OPERATIONS:
        hint = _remedy(operation, operator, on_workspace).as_tool_call()
        if operator:
            assert "ask whoever runs the MCP server" in hint
        else:
            assert operation in tools, operation
            assert f"call {operation}" in hint


@pytest.mark.parametrize(("operation", "operator", "on_workspace"), OPERATIONS)
def test_the_cli_spelling_is_a_command_the_parser_has(
    operation: str, operator: bool, on_workspace: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    words = _remedy(operation, operator, on_workspace).command().split()
    with pytest.raises(SystemExit) as helped:  # `--help` of a command that exists; an unknown one is a usage error
        build_parser().parse_args([*words[1:], "--help"])
    assert helped.value.code == 0, words
    assert f"usage: {' '.join(word for word in words if word != 'ws-1')}" in capsys.readouterr().out
