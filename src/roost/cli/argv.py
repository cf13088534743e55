"""Command-line habits argparse does not have on its own, applied before it parses.

- `--json` is accepted anywhere before the command to run: at the top
  (`roost --json doctor`), between group words (`roost workspace --json list`)
  or after the leaf (`roost doctor --json`).
- A command that runs a program (`workspace exec`, `run`, `service start`)
  takes it without `--`: the first positional after the leaf's own positionals
  (WS, ENV, NAME) starts the program, and every word from there on, options
  included, belongs to it (`roost workspace exec WS ls -la`). A `--` before
  that point still works as before.

Imports: the standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses

COMMAND_DEST = "argv"
JSON_FLAG = "--json"


@dataclasses.dataclass(frozen=True)
class Normalized:
    """The words argparse should parse, and whether `--json` was given above the leaf."""

    words: list[str]
    json_above_leaf: bool


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _takes_value(parser: argparse.ArgumentParser, word: str) -> bool:
    """Whether option `word` consumes the next word (unknown options and `--opt=value` do not)."""
    if "=" in word:
        return False
    action = parser._option_string_actions.get(word)
    return action is not None and action.nargs != 0


def _leading_positionals(parser: argparse.ArgumentParser) -> int | None:
    """How many positionals come before the program, for a leaf that runs one; None for any other parser."""
    positionals = [a for a in parser._actions if not a.option_strings]
    if not positionals or positionals[-1].dest != COMMAND_DEST:
        return None
    return len(positionals) - 1


def normalize(parser: argparse.ArgumentParser, words: list[str]) -> Normalized:
    """Lift `--json` out of the group levels and mark where a program starts with `--`."""
    out: list[str] = []
    json_above = False
    current = parser
    seen_positionals = 0
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            return Normalized([*out, word, *words[index:]], json_above)
        children = _subcommands(current)
        if word.startswith("-") and word != "-":
            if word == JSON_FLAG and children:
                json_above = True
                continue
            out.append(word)
            if _takes_value(current, word) and index < len(words):
                out.append(words[index])
                index += 1
            continue
        if word in children:
            current = children[word]
            out.append(word)
            continue
        before_program = _leading_positionals(current)
        if before_program is not None and seen_positionals == before_program:
            return Normalized([*out, "--", word, *words[index:]], json_above)
        seen_positionals += 1
        out.append(word)
    return Normalized(out, json_above)
