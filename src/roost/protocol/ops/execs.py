"""Messages of the exec op, and the rule for a command that services share.

Imports: this package's `message`, protocol's `messages` and `limits`; standard library only.
"""

from __future__ import annotations

from roost.protocol.limits import DEFAULT_EXEC_OUTPUT_BYTES, MAX_FILE_OFFSET
from roost.protocol.messages import Op
from roost.protocol.ops.message import GUEST_ROOT, Message, OpMessages, invalid, message, wire
from roost.protocol.ops.secrets import SecretGrant

__all__ = ["MESSAGES", "ExecArgs", "ExecOutcome", "check_command"]

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


@message
class ExecArgs(Message):
    """Run `argv`, or the shell script `command` (exactly one), in `cwd` with `env` over the agent's.

    The request's body (or upload) is its stdin. Output streams on the
    stdout/stderr channels, up to `max_output_bytes` of each (null: all of
    it); `timeout` seconds kill it.
    """

    OP = Op.EXEC
    argv: tuple[str, ...] | None = wire(None)
    command: str | None = wire(None)
    cwd: str = wire(GUEST_ROOT, name=True)
    env: dict[str, str] = wire({})
    # Secrets for this process only (never a record); a grant's value is left out of the repr.
    secrets: tuple[SecretGrant, ...] = wire(())
    timeout: float | None = wire(None, above=0)
    max_output_bytes: int | None = wire(
        DEFAULT_EXEC_OUTPUT_BYTES, minimum=0, maximum=MAX_FILE_OFFSET, null_is_value=True
    )

    def check(self) -> None:
        check_command(self.argv, self.command)


@message
class ExecOutcome(Message):
    """How a command ended and how much output it wrote (the `_truncated` flags: not all of it was sent)."""

    exit_code: int | None = wire(None)
    signal: str | None = wire(None)
    timed_out: bool = wire(False)
    duration_ms: float = wire(0.0, minimum=0)
    stdout_bytes: int = wire(0, minimum=0)
    stderr_bytes: int = wire(0, minimum=0)
    stdout_truncated: bool = wire(False)
    stderr_truncated: bool = wire(False)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.EXEC: OpMessages(ExecArgs, ExecOutcome),
}
