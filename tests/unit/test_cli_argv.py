"""How the command line is prepared before argparse: `--json` anywhere, programs without `--`."""

from __future__ import annotations

import pytest

from roost.cli.argv import normalize
from roost.cli.commands.copy import Side, parse_side
from roost.cli.parser import build_parser


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["workspace", "exec", "w", "ls", "-la"], ["workspace", "exec", "w", "--", "ls", "-la"]),
        (
            ["ws", "exec", "w", "--cwd", "src", "ls", "--json"],
            ["ws", "exec", "w", "--cwd", "src", "--", "ls", "--json"],
        ),
        (["ws", "exec", "-it", "w", "bash"], ["ws", "exec", "-it", "w", "--", "bash"]),
        (["ws", "exec", "w", "--stdin", "-", "cat"], ["ws", "exec", "w", "--stdin", "-", "--", "cat"]),
        (["ws", "exec", "w", "-c", "make test"], ["ws", "exec", "w", "-c", "make test"]),
        (["ws", "exec", "w", "--", "-weird", "x"], ["ws", "exec", "w", "--", "-weird", "x"]),
        (["run", "debian:12", "--timeout=5", "echo", "-n"], ["run", "debian:12", "--timeout=5", "--", "echo", "-n"]),
        (
            ["ws", "service", "start", "w", "web", "python3", "-m", "http.server"],
            ["ws", "service", "start", "w", "web", "--", "python3", "-m", "http.server"],
        ),
        (["ws", "file", "read", "w", "a.txt"], ["ws", "file", "read", "w", "a.txt"]),
    ],
)
def test_the_first_word_after_the_positionals_starts_the_program(words: list[str], expected: list[str]) -> None:
    normalized = normalize(build_parser(), words)
    assert normalized.words == expected
    assert not normalized.json_above_leaf


@pytest.mark.parametrize(
    ("words", "left"),
    [
        (["--json", "doctor"], ["doctor"]),
        (["--home", "h", "--json", "workspace", "list"], ["--home", "h", "workspace", "list"]),
        (["workspace", "--json", "exec", "w", "ls"], ["workspace", "exec", "w", "--", "ls"]),
    ],
)
def test_json_above_the_leaf_is_lifted_out(words: list[str], left: list[str]) -> None:
    normalized = normalize(build_parser(), words)
    assert normalized.words == left
    assert normalized.json_above_leaf


@pytest.mark.parametrize(
    ("text", "side"),
    [
        ("demo:/workspace/a", Side("/workspace/a", "demo")),
        ("ws-12ab:src", Side("src", "ws-12ab")),
        ("./a:b", Side("./a:b")),
        ("/tmp/x:y", Side("/tmp/x:y")),
        ("plain", Side("plain")),
    ],
)
def test_a_copy_side_is_a_workspace_path_only_as_ws_colon_path(text: str, side: Side) -> None:
    assert parse_side(text) == side
