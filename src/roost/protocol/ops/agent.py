"""Messages of the agent's own ops: ping, shutdown, stats, and restored (a machine resumed from a template).

Imports: this package's `message`, protocol's `messages`; standard library only.
"""

from __future__ import annotations

from roost.protocol.messages import Op
from roost.protocol.ops.message import Message, OpMessages, invalid, message, wire

__all__ = [
    "MESSAGES",
    "PingArgs",
    "PingResult",
    "RestoredArgs",
    "RestoredResult",
    "ShutdownArgs",
    "ShutdownResult",
    "StatsArgs",
    "StatsResult",
]

_HEX = frozenset("0123456789abcdef")
ENTROPY_BYTES = 64


@message
class PingArgs(Message):
    OP = Op.PING


@message
class PingResult(Message):
    """The agent is there: its process id."""

    pong: bool = wire()
    pid: int = wire(minimum=1)


@message
class ShutdownArgs(Message):
    OP = Op.SHUTDOWN


@message
class ShutdownResult(Message):
    """The agent is stopping: the services it stopped and the shells it closed first."""

    stopping: bool = wire()
    services_stopped: tuple[str, ...] = wire(())
    shells_closed: tuple[str, ...] = wire(())


@message
class StatsArgs(Message):
    """What the workspace uses: of the whole system the agent runs in (`system`: a VM of its own), or of
    the agent's process tree."""

    OP = Op.STATS
    system: bool = wire(False)


@message
class StatsResult(Message):
    """CPU time, memory now and at its peak (None: not known in this view), processes, the bytes
    allocated under /workspace, and in use on the system's root file system (None: not asked for)."""

    cpu_seconds: float = wire(minimum=0)
    memory_bytes: int = wire(minimum=0)
    pids: int = wire(minimum=0)
    workspace_bytes: int = wire(minimum=0)
    memory_peak_bytes: int | None = wire(None, minimum=0)
    filesystem_bytes: int | None = wire(None, minimum=0)


@message
class RestoredArgs(Message):
    """The machine this agent runs in was resumed from a template's memory snapshot: become a new
    machine for workspace `workspace_id` before anything else runs (every clone of the template
    holds the same entropy pool, clock, hostname, machine-id and identity key until it does)."""

    OP = Op.RESTORED
    workspace_id: str = wire()
    key_hex: str = wire(secret=True)  # the workspace's own identity key: proofs use it from now on
    entropy_hex: str = wire(secret=True)  # fresh host randomness, credited to the guest's pool
    unix_time_ns: int = wire(minimum=0)
    hostname: str = wire()
    machine_id: str = wire()

    def check(self) -> None:
        for key, value, length in (
            ("key_hex", self.key_hex, None),
            ("entropy_hex", self.entropy_hex, ENTROPY_BYTES * 2),
            ("machine_id", self.machine_id, 32),
        ):
            if not value or set(value) - _HEX or len(value) % 2 or (length is not None and len(value) != length):
                digits = f" of {length} digits" if length else ""
                raise invalid(f"{key!r} must be lowercase hex{digits}", hint="bytes.hex() of the value")
        if not 0 < len(self.hostname) <= 63 or not all(
            c.isascii() and (c.isalnum() or c == "-") for c in self.hostname
        ):
            raise invalid("'hostname' must be 1 to 63 letters, digits or '-'", hint="e.g. the workspace id")
        if not self.workspace_id:
            raise invalid("'workspace_id' must not be empty", hint="the workspace the machine now serves")


@message
class RestoredResult(Message):
    """What the agent renewed; every step must have happened for the clone to be a machine of its own."""

    entropy_bits: int = wire(minimum=0)
    hostname: str = wire()
    machine_id: str = wire()
    workspace_id: str = wire()


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.PING: OpMessages(PingArgs, PingResult),
    Op.SHUTDOWN: OpMessages(ShutdownArgs, ShutdownResult),
    Op.STATS: OpMessages(StatsArgs, StatsResult),
    Op.RESTORED: OpMessages(RestoredArgs, RestoredResult),
}
