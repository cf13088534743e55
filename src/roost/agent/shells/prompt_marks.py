"""Prompt marks: how a shell tells the agent that a command has finished, and with what status.

Before each prompt, the shell prints an invisible terminal sequence (an OSC
string, which terminals ignore) carrying a random nonce of its own and the
last command's exit status: `ESC ] 6973 ; roost ; NONCE ; STATUS BEL`. The
agent takes every mark with the shell's nonce out of the output before it
reaches the ring, so no reader ever sees one; a program that prints
mark-looking text without the nonce changes nothing.

bash gets the mark from a function run first in `PROMPT_COMMAND` (set by an
rc file that also reads the usual /etc/bash.bashrc and ~/.bashrc); a POSIX
`sh` gets it from `PS1` through `$ENV`. The shell's variables hold the mark
as `printf` escapes, never as the bytes themselves, so printing them (`set`,
`declare -f`, `set -x`) prints no mark; and they are never exported, so a
shell started inside it prints none either.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import tempfile
import time
from dataclasses import dataclass

MARK_PREFIX = b"\x1b]6973;roost;"
_STATUS = re.compile(rb"\d{0,3}")

_BASH_RC = """\
[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc
[ -f ~/.bashrc ] && . ~/.bashrc
__roost_prompt_mark() {{ local s=$?; printf '\\033]6973;roost;%s;%s\\007' {nonce} "$s"; return "$s"; }}
PROMPT_COMMAND="__roost_prompt_mark${{PROMPT_COMMAND:+; $PROMPT_COMMAND}}"
export -n PROMPT_COMMAND
"""
_SH_ENV = """\
__roost_ps1={ps1}
unset PS1 ENV
PS1='$(printf "\\033]6973;roost;%s;%s\\007" {nonce} "$?")'"$__roost_ps1"
unset __roost_ps1
if (export -n PS1) 2>/dev/null; then export -n PS1; fi
"""


@dataclass(frozen=True)
class PromptHook:
    """What makes one shell print prompt marks: its nonce and the rc file that installs them."""

    nonce: str
    argv: list[str]
    env: dict[str, str]
    rc_path: str

    def remove(self) -> None:
        """Delete the rc file (the shell has read it once it has prompted, or it never will)."""
        try:
            os.unlink(self.rc_path)
        except FileNotFoundError:
            pass


def prompt_hook(argv: list[str], env: dict[str, str]) -> PromptHook | None:
    """The argv and environment that make `bash -i` or `sh -i` print marks; None for any other command,
    or when no rc file can be written (the shell then runs without marks)."""
    if argv not in (["bash", "-i"], ["sh", "-i"]):
        return None
    nonce = secrets.token_hex(8)
    bash = argv[0] == "bash"
    # sh gets the prompt from the rc file, not the environment: an exported PS1 would carry the mark to
    # every shell started inside it, and not every sh can stop exporting a variable.
    ps1 = shlex.quote(env["PS1"]) if "PS1" in env else '"${PS1-\\$ }"'
    try:
        fd, rc_path = tempfile.mkstemp(prefix="roost-shell-rc-")  # 0600, outside /workspace
        with os.fdopen(fd, "w") as rc:
            rc.write(_BASH_RC.format(nonce=nonce) if bash else _SH_ENV.format(nonce=nonce, ps1=ps1))
    except OSError:
        return None
    if bash:
        return PromptHook(nonce, ["bash", "--rcfile", rc_path, "-i"], env, rc_path)
    sh_env = {name: value for name, value in env.items() if name != "PS1"}
    return PromptHook(nonce, argv, {**sh_env, "ENV": rc_path}, rc_path)


class MarkFilter:
    """Takes one shell's marks out of its output stream, however the stream is cut into reads."""

    def __init__(self, nonce: str) -> None:
        self._head = MARK_PREFIX + nonce.encode() + b";"
        self._mark = re.compile(re.escape(self._head) + rb"(\d{1,3})\x07")
        self._longest = len(self._head) + 4
        self._held = b""  # the start of what may be a mark, until the rest arrives
        self._held_at = 0.0

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def held_for(self) -> float:
        """Seconds the start of a possible mark has waited for its rest (0 when none waits)."""
        return time.monotonic() - self._held_at if self._held else 0.0

    def feed(self, data: bytes) -> list[bytes | int]:
        """The output in order: pieces of text, and between them the status each mark carried."""
        data, self._held = self._held + data, b""
        pieces: list[bytes | int] = []
        pos = 0
        for match in self._mark.finditer(data):
            if match.start() > pos:
                pieces.append(data[pos : match.start()])
            pieces.append(int(match.group(1)))
            pos = match.end()
        rest = data[pos:]
        cut = self._partial_mark_at(rest)
        if cut is not None:
            rest, self._held = rest[:cut], rest[cut:]
            self._held_at = time.monotonic()
        if rest:
            pieces.append(rest)
        return pieces

    def flush(self) -> bytes:
        """What was held back as a possible mark that never completed: it was output after all."""
        held, self._held = self._held, b""
        return held

    def _partial_mark_at(self, data: bytes) -> int | None:
        """Where a mark that has not fully arrived starts at the end of `data`, if one does."""
        esc = data.rfind(b"\x1b", max(0, len(data) - self._longest))
        if esc < 0:
            return None
        tail = data[esc:]
        if self._head.startswith(tail):
            return esc
        if tail.startswith(self._head) and _STATUS.fullmatch(tail[len(self._head) :]):
            return esc
        return None
