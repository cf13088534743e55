"""Turning raw terminal output into the text a person (or a model) would read.

Escape sequences (CSI, OSC, charset and keypad switches) are dropped,
backspaces rub out, and a carriage return lets what follows overwrite the
line from its start, the way a progress bar redraws itself. Only the
erase-in-line sequence (CSI K) is honoured, since redrawn prompts use it.

Imports: the standard library only.
"""

from __future__ import annotations

import re

# CSI: ESC [ params intermediates final | OSC: ESC ] ... BEL or ST | other two/three-byte escapes.
_ESCAPE = re.compile(
    r"\x1b\[(?P<csi_params>[0-?]*)[ -/]*(?P<csi_final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[()*+][0-~]"
    r"|\x1b[@-Z\\-_=>78]"
)


# Anything but a newline that changes how the text shows: escapes, lone carriage returns, tabs, backspaces.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def plain_text(raw: bytes | str) -> str:
    """Readable text from raw terminal output."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    lines_only = text.replace("\r\n", "\n")
    if not _CONTROL.search(lines_only):  # plain lines (a flood of output, mostly): no screen to draw
        *done, last = lines_only.split("\n")
        return "".join(line.rstrip() + "\n" for line in done) + last.rstrip()
    return _drawn(text)


def _drawn(text: str) -> str:
    """The screen's text, character by character."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\x1b":
            match = _ESCAPE.match(text, pos)
            if match is None:
                pos += 1  # a lone ESC: drop it
                continue
            if match.group("csi_final") == "K":
                mode = match.group("csi_params") or "0"
                if mode == "0":
                    del line[col:]
                elif mode == "2":
                    line = [" "] * col
            pos = match.end()
            continue
        if char == "\n":
            lines.append("".join(line).rstrip())
            line, col = [], 0
        elif char == "\r":
            col = 0
        elif char == "\b":
            col = max(0, col - 1)
        elif char == "\t":
            advance = 8 - col % 8
            for _ in range(advance):
                _put(line, col, " ")
                col += 1
        elif char >= " " and char != "\x7f":
            _put(line, col, char)
            col += 1
        pos += 1
    # Every finished line with its newline, then what the last line holds (escapes after a newline add none).
    return "".join(done + "\n" for done in lines) + "".join(line).rstrip()


def _put(line: list[str], col: int, char: str) -> None:
    if col < len(line):
        line[col] = char
    else:
        line.extend(" " * (col - len(line)))
        line.append(char)
