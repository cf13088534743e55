"""What the store knows of a secret besides its value, and the rules for names and modes.

Imports: errors, models, roost.network.policy (host patterns) and the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from roost.errors import InvalidArgument, StorageError
from roost.models import SecretInfo

__all__ = [
    "DEFAULT_MODES",
    "MODES",
    "SECRET_NAME_RULE",
    "SecretInfo",
    "check_hosts",
    "check_modes",
    "check_name",
    "store_corrupt",
]

MODES = ("env", "file", "proxy")
# A secret set without `--mode`: given to the processes that ask for it (proxy needs allowed hosts).
DEFAULT_MODES = ("env", "file")
SECRET_NAME_RULE = "a letter or '_', then up to 63 letters, digits or '_'"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_name(name: object) -> str:
    """Raises: InvalidArgument: not a secret name (the rule is the hint)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise InvalidArgument(f"invalid secret name {shown}", hint=f"use {SECRET_NAME_RULE}")
    return name


def check_modes(modes: Iterable[str]) -> tuple[str, ...]:
    """Known modes, each once, in the order of `MODES`.

    Raises:
        InvalidArgument: an unknown mode, or none.
    """
    given = set(modes)
    unknown = sorted(given - set(MODES))
    if unknown:
        raise InvalidArgument(f"unknown secret mode {unknown[0]!r}", hint=f"use one of {', '.join(MODES)}")
    if not given:
        raise InvalidArgument("a secret needs at least one mode", hint=f"use one of {', '.join(MODES)}")
    return tuple(mode for mode in MODES if mode in given)


def check_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Hosts a proxy may send a secret to: names or `*.suffix` wildcards, as network allow-lists write them.

    Raises:
        InvalidArgument: a malformed host, a CIDR, a preset or a port (a secret goes to names only).
    """
    from roost.network.policy import parse_destinations  # imported here: only `secret set --host` needs it

    checked: list[str] = []
    for host in hosts:
        found = parse_destinations(host) if not host.strip().startswith("@") else ()
        if len(found) != 1 or found[0].kind == "cidr" or found[0].port is not None:
            raise InvalidArgument(
                f"secret host {host!r} is not a host name or *.suffix wildcard",
                hint="e.g. api.example.com or *.example.com (no port, address or preset)",
            )
        if found[0].text not in checked:
            checked.append(found[0].text)
    return tuple(checked)


def store_corrupt(message: str) -> StorageError:
    """The error for a store (or its key) this roost cannot read; `message` never quotes a value."""
    return StorageError(
        message,
        code="secret_store_corrupt",
        hint="remove the secrets directory under ROOST_HOME and set the secrets again",
    )
