"""Messages of the exec op, and the rule for a command that services share.

Imports: this package's `message`, protocol's `messages`; standard library only.
"""

from __future__ import annotations

from roost.protocol.ops.message import invalid

__all__ = ["check_command"]

_COMMAND_HINT = "e.g. argv ['ls', '-la'], or command 'ls -la' for the shell"


def check_command(argv: tuple[str, ...] | None, command: str | None) -> None:
    """What to run: exactly one of an argv (non-empty) and a shell script (not blank), no NUL byte in either.

    Raises:
        OpError: invalid_argument.
    """
    if (argv is None) == (command is None):
        raise invalid("give exactly one of 'argv' (a list) or 'command' (a shell string)", hint=_COMMAND_HINT)
    if command is not None and not command.strip():
        raise invalid("'command' must be a non-empty string", hint=_COMMAND_HINT)
    if argv is not None and not argv:
        raise invalid("'argv' must be a non-empty list of strings", hint=_COMMAND_HINT)
    if any("\0" in arg for arg in argv or (command or "",)):
        raise invalid("arguments may not contain NUL bytes", hint="remove the NUL byte")
