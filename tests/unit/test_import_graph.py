"""The import graph of `src/roost` points only down (DESIGN.md, "Layers") and has no circles.

Read from the source with `ast`, imports inside functions included: a lazy import is still
a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
BACKENDS = ("roost.backends.firecracker", "roost.backends.sandbox", "roost.backends.mock")
FRONT_ENDS = ("roost.cli", "roost.mcp", "roost.ui")
BEHIND_THE_SDK = (
    "roost.workspace",
    "roost.backends",
    "roost.store",
    "roost.images",
    "roost.rpc",
    "roost.protocol",
    "roost.agent",
    "roost.guest",
)

# The agent's units, lowest layer first (see roost/agent/__init__.py): a unit imports its own modules and
# those of lower layers; the units of one layer never import each other.
OPERATIONS = tuple(f"roost.agent.{name}" for name in ("control", "execs", "files", "shells", "services", "snapshots"))
AGENT_LAYERS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"fs": ("roost.agent.fs",), "system": ("roost.agent.system",)},
    {"secret files": ("roost.agent.secret_files",)},
    {"request core": ("roost.agent.context", "roost.agent.record_page", "roost.agent.state")},
    {package.rpartition(".")[2]: (package,) for package in OPERATIONS},
    {"op table": ("roost.agent.ops",)},
    {"server": ("roost.agent.server",)},
    {"entry point": ("roost.agent.__main__",)},
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "roost").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str) -> Iterator[str]:
    """The roost modules `name` imports (`from pkg import mod` counts as `pkg.mod`)."""
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from (target for target in targets if target in MODULES and target != name)


GRAPH = {name: set(_imports(name)) for name in MODULES}


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_no_module_imports_itself_through_others() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(name: str) -> None:  # Tarjan's strongly connected components
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in GRAPH[name]:
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    assert circles == []


def test_the_agent_imports_only_itself_and_the_protocol() -> None:
    wrong = {
        name: sorted(other for other in GRAPH[name] if not _within(other, ("roost.agent", "roost.protocol")))
        for name in MODULES
        if _within(name, ("roost.agent",))
    }
    assert {name: others for name, others in wrong.items() if others} == {}


def test_the_protocol_imports_only_itself() -> None:
    wrong = {name: sorted(GRAPH[name] - {n for n in MODULES if _within(n, ("roost.protocol",))}) for name in MODULES}
    assert {n: o for n, o in wrong.items() if _within(n, ("roost.protocol",)) and o} == {}


def _crossings(siblings: tuple[str, ...]) -> set[tuple[str, str]]:
    """Every import from a module of one of `siblings` into a module of another."""
    return {
        (name, other)
        for name in MODULES
        for other in GRAPH[name]
        for mine in siblings
        if _within(name, (mine,)) and _within(other, siblings) and not _within(other, (mine,))
    }


def test_backends_never_import_each_other() -> None:
    assert _crossings(BACKENDS) == set()


def test_the_front_ends_never_import_each_other() -> None:
    assert _crossings(FRONT_ENDS) == set()


def test_the_cli_table_names_handlers_in_the_cli_only() -> None:
    """The grammar's "module:function" handlers are imports the graph cannot see: they stay in the CLI."""
    from roost.cli.parser import build_parser

    handlers: set[str] = set()
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        if "handler" in parser._defaults:
            handlers.add(parser._defaults["handler"].split(":")[0])
        for action in parser._actions:
            if isinstance(action.choices, dict):
                parsers.extend(action.choices.values())
    assert handlers and handlers <= set(MODULES)
    assert {module for module in handlers if not _within(module, ("roost.cli.commands",))} == set()


def _reaching(importers: tuple[str, ...], imported: tuple[str, ...]) -> set[tuple[str, str]]:
    """Every import from a module of the `importers` packages to one of the `imported` packages."""
    return {
        (name, other)
        for name in MODULES
        if _within(name, importers)
        for other in GRAPH[name]
        if _within(other, imported)
    }


def test_front_ends_reach_below_only_through_the_sdk() -> None:
    assert _reaching(FRONT_ENDS, BEHIND_THE_SDK) == set()


@pytest.mark.parametrize("pure", ["roost.store.states", "roost.store.record_versions"])
def test_the_workspace_state_machine_and_record_versions_import_nothing(pure: str) -> None:
    assert GRAPH[pure] == set()


def test_backends_only_boot_and_reach_neither_images_nor_the_store_nor_orchestration() -> None:
    assert _reaching(("roost.backends",), ("roost.images", "roost.store", "roost.workspace")) == set()


def test_the_store_knows_no_backend_image_or_orchestration() -> None:
    assert _reaching(("roost.store",), ("roost.backends", "roost.images", "roost.workspace", "roost.rpc")) == set()


def _agent_unit(name: str) -> tuple[int, str] | None:
    """(layer, unit) of an agent module; None for one no layer holds."""
    for layer, units in enumerate(AGENT_LAYERS):
        for unit, packages in units.items():
            if _within(name, packages):
                return layer, unit
    return None


AGENT_MODULES = sorted(name for name in MODULES if _within(name, ("roost.agent",)) and name != "roost.agent")


def test_every_agent_module_has_a_layer() -> None:
    assert [name for name in AGENT_MODULES if _agent_unit(name) is None] == []


def test_the_agent_imports_only_down_its_layers_and_never_across_one() -> None:
    wrong = set()
    for name in AGENT_MODULES:
        mine = _agent_unit(name)
        for other in GRAPH[name]:
            theirs = _agent_unit(other)
            if mine is None or theirs is None or theirs == mine:
                continue
            if theirs[0] >= mine[0]:  # up a layer, or across to another unit of its own
                wrong.add((name, other))
    assert wrong == set()


def test_only_the_op_table_reaches_the_operation_packages() -> None:
    reaching = {
        (name, other)
        for name in AGENT_MODULES
        if not _within(name, (*OPERATIONS, "roost.agent.ops"))
        for other in GRAPH[name]
        if _within(other, OPERATIONS)
    }
    assert reaching == set()
