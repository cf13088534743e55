"""File names are bytes: the one text form that carries any of them in JSON and in patches.

A Linux file name is any bytes but `/` and NUL; JSON strings and patch
headers are text. Roost writes a name as text by git's rule for quoted
paths, everywhere a name leaves a process (results, arguments, the wire,
patches):

* A name that is valid UTF-8 and holds none of the characters below is
  written as itself.
* Any other name is written in C quotes, as git does: `"` + the name + `"`,
  where `\\` and `"` are escaped with a backslash, the usual `\\a \\b \\t \\n
  \\v \\f \\r` stand for those controls, and every other byte that needs it is
  three octal digits (`\\351`). Needing it: a byte that is not part of valid
  UTF-8, a C0 or C1 control or DEL, and the characters that reorder or
  break text (bidi controls, line and paragraph separators).

So a text form that starts with `"` is always quoted (a name that really
starts with a quote gets quoted too) and turns back into exactly the bytes it
came from; `git apply` reads the same form in a patch header.

Inside a Python process a name is a `str` as `os.fsdecode` makes it
(bytes that are not UTF-8 become lone surrogates), so it goes straight
into `os` calls; `as_bytes` gives its bytes.

Standard library only, no I/O: the guest agent imports it.
"""

from __future__ import annotations

import os
import re

__all__ = ["NameFormError", "as_bytes", "from_text", "needs_quotes", "to_text"]

# Controls (C0, DEL, C1), lone surrogates (bytes that were not UTF-8), bidi controls,
# line/paragraph separators, the quote and the backslash.
_NEEDS_QUOTES = re.compile('[\x00-\x1f"\\\\\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]')
_C_ESCAPES = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r", '"': '"', "\\": "\\"}
_C_UNESCAPES = {letter: ord(char) for char, letter in _C_ESCAPES.items()}


class NameFormError(ValueError):
    """A text that starts with `"` but is not a well-formed quoted name."""


def needs_quotes(name: str) -> bool:
    """Whether the (native) `name` is written quoted."""
    return _NEEDS_QUOTES.search(name) is not None


def as_bytes(name: str | bytes) -> bytes:
    """The bytes of a native name (`os.fsencode`), or `name` itself when it is bytes already."""
    return name if isinstance(name, bytes) else os.fsencode(name)


def to_text(name: str | bytes) -> str:
    """The text form of a native `str` name or of raw bytes: as is, or C-quoted."""
    native = os.fsdecode(name) if isinstance(name, bytes) else name
    if not _NEEDS_QUOTES.search(native):
        return native
    out = ['"']
    for char in native:
        if char in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[char])
        elif _NEEDS_QUOTES.match(char):
            out.extend(f"\\{byte:03o}" for byte in _char_bytes(char))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _char_bytes(char: str) -> bytes:
    try:
        return os.fsencode(char)
    except UnicodeEncodeError:  # a surrogate no file name decodes to: shown by its code, never lost silently
        return char.encode("utf-8", "surrogatepass")


def from_text(text: str) -> str:
    """The native name a text form stands for (the inverse of `to_text`).

    Text that does not start with `"` is the name itself.

    Raises:
        NameFormError: a quoted form that is cut short, holds an unknown escape or a bare quote.
    """
    if not text.startswith('"'):
        return text
    if len(text) < 2 or not text.endswith('"'):
        raise NameFormError(f"{text!r} starts with a quote but does not end with one")
    raw = bytearray()
    body = text[1:-1]
    i = 0
    while i < len(body):
        char = body[i]
        if char == '"':
            raise NameFormError(f'{text!r} has an unescaped " inside the quotes')
        if char != "\\":
            try:
                raw += os.fsencode(char)
            except UnicodeEncodeError:
                raise NameFormError(f"{text!r} holds a character that is no byte of a name") from None
            i += 1
            continue
        escape = body[i + 1 : i + 2]
        if escape in _C_UNESCAPES:
            raw.append(_C_UNESCAPES[escape])
            i += 2
        elif len(digits := body[i + 1 : i + 4]) == 3 and all(d in "01234567" for d in digits) and digits[0] in "0123":
            raw.append(int(digits, 8))
            i += 4
        else:
            raise NameFormError(f"{text!r} holds the unknown escape {body[i : i + 4]!r}")
    return os.fsdecode(bytes(raw))
