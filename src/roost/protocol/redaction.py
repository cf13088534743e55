"""Redaction: a secret's value and its common encodings become `[redacted:NAME]` in any output.

The forms caught, for each value: the bytes themselves; URL-encoded
(`%XX`, and `+` for spaces); base64, standard and URL-safe, padded and
unpadded, and the part of it that stays the same whatever comes before
the value in a longer base64 text (the 3 alignments). Encoded forms
shorter than `MIN_ENCODED_FORM` are left out: they would redact common
text. Where two forms match at one place the longest wins.

A stream (exec output, a followed log) is redacted through `StreamRedactor`,
which holds back the last `hold` units between chunks, so a value split
across chunks is caught as if it had come in one.

Here, beside the protocol, because both sides redact: the host every output
channel of a workspace, the agent a service's logs before they are written.

Standard library only, no I/O: the guest agent imports it.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Mapping
from typing import AnyStr, Generic

__all__ = ["MIN_ENCODED_FORM", "Redactor", "StreamRedactor", "encoded_forms", "marker"]

MIN_ENCODED_FORM = 6
_B64_ALPHABETS = (base64.b64encode, base64.urlsafe_b64encode)


def marker(name: str) -> str:
    return f"[redacted:{name}]"


def encoded_forms(value: bytes) -> set[bytes]:
    """The value and the encodings of it that redaction looks for (see the module docstring)."""
    forms = {value}
    for quoted in (urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value, safe="")):
        forms.add(quoted.encode())
    for encode in _B64_ALPHABETS:
        whole = encode(value)
        forms.update((whole, whole.rstrip(b"=")))
        for skew in range(3):
            # Base64 of the value after `skew` other bytes: keep the characters made of the value's bits only.
            encoded = encode(bytes(skew) + value + bytes(2))
            start, end = -(-8 * skew // 6), 8 * (skew + len(value)) // 6
            forms.add(encoded[start:end])
    return {form for form in forms if form == value or len(form) >= MIN_ENCODED_FORM}


class _Patterns(Generic[AnyStr]):
    """Every form of every value, in one pattern (longest first), with the name each form stands for."""

    def __init__(self, forms: Mapping[AnyStr, str]) -> None:
        ordered = sorted(forms, key=len, reverse=True)
        self.names: dict[AnyStr, str] = dict(forms)
        self.longest = len(ordered[0]) if ordered else 0
        self.pattern: re.Pattern[AnyStr] | None = re.compile(_alternation(ordered)) if ordered else None

    def replacement(self, match: re.Match[AnyStr], empty: AnyStr) -> AnyStr:
        text = marker(self.names[match.group(0)])
        return text.encode() if isinstance(empty, bytes) else text


def _alternation(forms: list[AnyStr]) -> AnyStr:
    bar: AnyStr = b"|" if isinstance(forms[0], bytes) else "|"
    return bar.join(re.escape(form) for form in forms)


class Redactor:
    """Redacts the given secrets (name -> value) from bytes, text and streams of either.

    Its repr names the secrets, never their values.
    """

    def __init__(self, values: Mapping[str, bytes]) -> None:
        byte_forms: dict[bytes, str] = {}
        text_forms: dict[str, str] = {}
        for name, value in sorted(values.items()):
            if not value:
                continue
            for form in encoded_forms(value):
                byte_forms.setdefault(form, name)
                try:
                    text_forms.setdefault(form.decode("utf-8"), name)
                except UnicodeDecodeError:
                    pass  # text holds this value only as replacement characters: nothing left to find
        self.names = tuple(sorted(values))
        self._bytes = _Patterns(byte_forms)
        self._text = _Patterns(text_forms)

    def __repr__(self) -> str:
        return f"Redactor(names={self.names!r})"

    @property
    def active(self) -> bool:
        return self._bytes.pattern is not None

    def redact(self, data: bytes) -> bytes:
        return _redact_all(self._bytes, data)

    def redact_text(self, text: str) -> str:
        return _redact_all(self._text, text)

    def stream(self) -> StreamRedactor[bytes]:
        return StreamRedactor(self._bytes, b"")

    def text_stream(self) -> StreamRedactor[str]:
        return StreamRedactor(self._text, "")


def _redact_all(patterns: _Patterns[AnyStr], data: AnyStr) -> AnyStr:
    if patterns.pattern is None or not data:
        return data
    empty = data[:0]
    return patterns.pattern.sub(lambda match: patterns.replacement(match, empty), data)


class StreamRedactor(Generic[AnyStr]):
    """Redacts a stream chunk by chunk: `feed` returns what is safe to pass on, `finish` the rest."""

    def __init__(self, patterns: _Patterns[AnyStr], empty: AnyStr) -> None:
        self._patterns: _Patterns[AnyStr] = patterns
        self._pending: AnyStr = empty
        self.hold = max(0, patterns.longest - 1)

    def feed(self, chunk: AnyStr) -> AnyStr:
        data = self._pending + chunk
        pattern = self._patterns.pattern
        if pattern is None:
            self._pending = data[:0]
            return data
        # A match that starts before `safe` is whole in `data`: no form is longer than `hold` + 1.
        safe = len(data) - self.hold
        pieces: list[AnyStr] = []
        pos = 0
        for match in pattern.finditer(data):
            if match.start() >= safe:
                break
            pieces += [data[pos : match.start()], self._patterns.replacement(match, data[:0])]
            pos = match.end()
        cut = max(pos, safe)
        pieces.append(data[pos:cut])
        self._pending = data[cut:]
        return data[:0].join(pieces)

    @property
    def holding(self) -> bool:
        """Whether `feed` held something back (`finish` lets it out; the stream goes on after)."""
        return bool(self._pending)

    def finish(self) -> AnyStr:
        rest, self._pending = self._pending, self._pending[:0]
        return _redact_all(self._patterns, rest)
