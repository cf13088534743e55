"""Helpers every command handler uses: the SDK instance and option parsing.

Imports: client, errors and the standard library.
"""

from __future__ import annotations

import argparse
import sys

from roost.client import Roost
from roost.errors import InvalidArgument


def sdk(args: argparse.Namespace) -> Roost:
    """The SDK for one command; the workspaces whose TTL had passed are reaped on the way, in one line on stderr."""
    roost = Roost(home=getattr(args, "home", None), backend=getattr(args, "backend", None))
    if roost.reaped:
        sys.stderr.write(f"roost: reaped {len(roost.reaped)} expired workspace(s): {', '.join(roost.reaped)}\n")
    return roost


def key_values(pairs: list[str], what: str) -> dict[str, str]:
    """Parse repeated K=V options.

    Raises:
        InvalidArgument: a pair without '='.
    """
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what} {pair!r} is not KEY=VALUE", hint=f"write it as {what} KEY=VALUE")
        result[key] = value
    return result


def command_from(args: argparse.Namespace) -> str | list[str]:
    """The command to run: `-c SCRIPT`, or argv after `--`.

    A single argument containing whitespace is run by bash -c, because that
    is what anyone typing `-- "make && make test"` means.

    Raises:
        InvalidArgument: no command given.
    """
    argv = [str(arg) for arg in args.argv or []]
    if args.shell is not None:
        if argv:
            raise InvalidArgument("give either -c SCRIPT or -- CMD..., not both", hint="drop one of them")
        return str(args.shell)
    if not argv:
        raise InvalidArgument("no command given", hint="add the command after the workspace, e.g. git --version")
    if len(argv) == 1 and any(ch.isspace() for ch in argv[0]):
        return argv[0]
    return argv


def parse_mode(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"mode {text!r} is not an octal number", hint="e.g. --mode 0644") from None
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(
            f"mode {text!r} is out of range", hint="give permission bits from 0000 to 7777, e.g. 0644"
        )
    return mode
