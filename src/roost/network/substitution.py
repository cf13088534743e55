"""A proxy-mode secret as the gateway holds it: a placeholder the workspace sees, the value it stands for, the hosts it may go to.

The workspace only ever holds `placeholder`; the gateway puts `value` in its
place in requests to one of `hosts` (names or `*.suffix` wildcards, as in an
allow list). Values travel to the gateway over its control socket (base64
in JSON) and live in its memory only: never in a file, a log line, an error
message or a repr.

Imports: roost.errors, roost.network.policy and the standard library.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from roost.errors import InvalidArgument, NetworkError
from roost.network.policy import Destination, normalize_name

__all__ = ["Substitution", "substitutions_from_wire", "substitutions_to_wire"]

_MIN_PLACEHOLDER = 8


@dataclass(frozen=True)
class Substitution:
    """One secret in proxy mode; `value` is left out of repr and comparisons print nothing of it."""

    name: str
    placeholder: str
    value: bytes = field(repr=False)
    hosts: tuple[str, ...]
    in_body: bool = False

    def __post_init__(self) -> None:
        if len(self.placeholder) < _MIN_PLACEHOLDER or not self.placeholder.isascii():
            raise InvalidArgument(
                f"the placeholder for secret {self.name} is not usable",
                hint=f"a placeholder is at least {_MIN_PLACEHOLDER} ASCII characters",
            )
        if not self.hosts:
            raise InvalidArgument(
                f"secret {self.name} names no host to send it to",
                hint="name at least one host the secret may be sent to",
            )
        for host in self.hosts:
            _destination(host)  # raises on a bad name

    @property
    def marker(self) -> bytes:
        """The placeholder as it appears on the wire."""
        return self.placeholder.encode("ascii")

    def goes_to(self, host: str | None) -> bool:
        """Whether `host` (a normalised name, or None: unknown) is one this secret may be sent to."""
        return host is not None and any(_destination(entry).matches_name(host) for entry in self.hosts)


def _destination(host: str) -> Destination:
    if host.startswith("*."):
        return Destination("suffix", normalize_name(host[2:]))
    return Destination("name", normalize_name(host))


def substitutions_to_wire(substitutions: Iterable[Substitution]) -> list[dict[str, Any]]:
    """Substitutions as the control request carries them (values base64: this goes only to the 0600 socket)."""
    return [
        {
            "name": item.name,
            "placeholder": item.placeholder,
            "value": base64.b64encode(item.value).decode("ascii"),
            "hosts": list(item.hosts),
            "in_body": item.in_body,
        }
        for item in substitutions
    ]


def substitutions_from_wire(entries: Iterable[Mapping[str, Any]]) -> tuple[Substitution, ...]:
    """Raises: NetworkError: an entry does not read (the message names no value)."""
    found = []
    for entry in entries:
        try:
            value = base64.b64decode(str(entry["value"]), validate=True)
            found.append(
                Substitution(
                    name=str(entry["name"]),
                    placeholder=str(entry["placeholder"]),
                    value=value,
                    hosts=tuple(str(host) for host in entry["hosts"]),
                    in_body=bool(entry.get("in_body", False)),
                )
            )
        except (KeyError, TypeError, binascii.Error, InvalidArgument):
            raise NetworkError(
                "a proxy secret sent to the network gateway does not read",
                hint="roost and its gateway may be different versions",
            ) from None
    return tuple(found)
