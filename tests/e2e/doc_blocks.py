"""The code blocks of roost's Markdown docs, as the docs checker (test_docs.py) runs them.

A fenced block tagged `console`, `sh`, `bash` or `python` is runnable. HTML comments on
the lines right before its fence tell the checker more (none shows when rendered):

    <!-- docs-check: skip (needs KVM) -->        not run here; reported as skipped, with the reason
    <!-- docs-check: sandbox -->                 needs the sandbox backend; skipped on mock
    <!-- docs-check: setup CMD -->               a shell line run first, unseen (may repeat)

A `console` block is a list of `$ COMMAND` lines, each followed by the output it shows;
`...` stands for output left out. The output is compared loosely (see `output_matches`),
as ids, times and sizes differ from run to run.

Imports: re, dataclasses, pathlib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUNNABLE = ("console", "sh", "bash", "python")
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-check:\s*(.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\s*\((.+)\)$")


@dataclass(frozen=True)
class Command:
    """One `$ ` line of a console block and the output lines shown under it (`...` dropped)."""

    line: str
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    """A runnable fenced block of one doc."""

    doc: str
    lineno: int
    lang: str
    text: str
    skip: str | None = None
    sandbox_only: bool = False
    setup: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.lineno}"

    def commands(self) -> list[Command]:
        """The `$ ` commands of a console block, each with the output shown under it."""
        commands: list[Command] = []
        for raw in self.text.splitlines():
            if raw.startswith("$ "):
                commands.append(Command(raw[2:], ()))
            elif commands and raw.strip() and raw.strip() != "...":
                last = commands[-1]
                commands[-1] = Command(last.line, (*last.shown, raw))
        return commands


def _apply_directive(directive: str, options: dict[str, object], where: str) -> None:
    if match := _SKIP.match(directive):
        options["skip"] = match.group(1)
    elif directive == "sandbox":
        options["sandbox_only"] = True
    elif directive.startswith("setup "):
        options["setup"] = (*options.get("setup", ()), directive.removeprefix("setup "))  # type: ignore[misc]
    else:
        raise ValueError(f"{where}: unknown docs-check directive {directive!r}")


def _directives_before(lines: list[str], index: int, where: str) -> dict[str, object]:
    """The docs-check comments on the lines right above the fence at `index`, nearest last."""
    start = index
    while start > 0 and _DIRECTIVE.match(lines[start - 1]):
        start -= 1
    options: dict[str, object] = {}
    for line in lines[start:index]:
        match = _DIRECTIVE.match(line)
        assert match is not None
        _apply_directive(match.group(1), options, where)
    return options


def blocks_of(path: Path, root: Path) -> list[Block]:
    """Every runnable block of the Markdown file at `path`, named relative to `root`."""
    doc = path.relative_to(root).as_posix()
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if fence.group(1) in RUNNABLE:
            options = _directives_before(lines, index, f"{doc}:{index + 1}")
            text = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(doc, index + 1, fence.group(1), text, **options))  # type: ignore[arg-type]
        index = end + 1
    return blocks


# What differs between runs, replaced before output is compared.
_VOLATILE = (
    (re.compile(r"\bws-[0-9a-f]{10}\b"), "WS"),
    (re.compile(r"\bsh-[0-9a-f]+\b"), "SH"),
    (re.compile(r"\d+(\.\d+)*"), "N"),
)


def _normalized(line: str) -> list[str]:
    for pattern, placeholder in _VOLATILE:
        line = pattern.sub(placeholder, line)
    return line.split()


def output_matches(command: Command, output: str) -> str | None:
    """None when `output` fits what the doc shows under `command`, else why not.

    Loose on purpose: the first two words of the first line shown must begin the
    output's first line (ids, numbers and versions compare as placeholders), every
    `[error_code]` shown must be in the output, and a command ending in `echo $?`
    must end with the status shown.
    """
    shown = command.shown
    if not shown:
        return None
    lines = [line for line in output.splitlines() if line.strip()]
    if command.line.rstrip().endswith("echo $?") and (not lines or lines[-1].strip() != shown[-1].strip()):
        return f"exit status {lines[-1] if lines else '(none)'!r}, the doc shows {shown[-1]!r}"
    want = _normalized(shown[0])[:2]
    got = _normalized(lines[0])[: len(want)] if lines else []
    if got != want:
        return f"output begins {lines[0] if lines else '(nothing)'!r}, the doc shows {shown[0]!r}"
    for code in re.findall(r"\[([a-z_]+)\]", "\n".join(shown)):
        if f"[{code}]" not in output:
            return f"the doc shows error code [{code}], the output has none"
    return None
