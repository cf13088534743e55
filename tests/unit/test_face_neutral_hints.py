"""Hints raised below the front ends name no face's spelling: no `roost ...` command line, no `--option`.

Each face phrases a way out in its own terms: a `Remedy` (the operation, spelt as a command line by
the CLI and the SDK, as a tool call by MCP), or the CLI's own hint for a code whose way out is one of
its options. Read from the source with `ast`: every `hint=` argument, every name assigned that has
`hint` in it, and the summary of every `Remedy` and `operator_remedy`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "roost"
# The front ends (CLI, MCP, the dashboard) speak for themselves; the options module holds the options both server programs take.
FACES = ("cli", "mcp", "ui", "serve_options.py")
FACE_SPELLING = re.compile(r"`roost |\broost (workspace|env|runtime|doctor|mcp)\b|(^|[\s(`])--[a-z]")
# The CLI's --json is where an error's details are printed, and the hint says that is the CLI's.
ALLOWED = {"the tool's last lines are in the error's details (the CLI prints them with --json)"}


def _texts(node: ast.AST | None) -> Iterator[str]:
    """The literal text in an expression: strings, f-string parts, and the values of dicts and calls."""
    if node is None:
        return
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            yield inner.value


def _hints(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("hint", "summary"):
                    yield from ((node.lineno, text) for text in _texts(keyword.value))
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in ("Remedy", "operator_remedy") and node.args:
                yield from ((node.lineno, text) for text in _texts(node.args[0]))
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and "hint" in target.id.lower() for target in node.targets
        ):
            yield from ((node.lineno, text) for text in _texts(node.value))


def test_no_hint_below_the_front_ends_names_a_command_line_or_an_option() -> None:
    spelt = [
        f"{path.relative_to(SRC)}:{line}: {text!r}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] not in FACES
        for line, text in _hints(ast.parse(path.read_text()))
        if FACE_SPELLING.search(text) and text not in ALLOWED
    ]
    assert spelt == []


def test_the_scan_sees_the_spellings_it_looks_for() -> None:
    source = """
raise NotFound("gone", hint="list them with `roost workspace list`")
UNREACHABLE_HINT = "check `roost workspace status`"
hint = "or pass --force"
raise Oops("x", hint=f"pick another --name than {name}")
Remedy("pass --force", "workspace_delete", ws_id)
"""
    found = {text for _line, text in _hints(ast.parse(source)) if FACE_SPELLING.search(text)}
    assert found == {
        "list them with `roost workspace list`",
        "check `roost workspace status`",
        "pick another --name than ",
        "pass --force",
        "or pass --force",
    }
