"""Messages of the snapshot ops: create, list, delete; the workspace's diff against one, reset to one; and
send and receive one (a fork: another workspace comes to hold the same tree).

Imports: this package's `message`, `ignoring` and `paging`, protocol's `messages` and `limits`; standard library only.
"""

from __future__ import annotations

from roost.protocol.limits import SNAPSHOT_NAME, SNAPSHOT_NAME_RULE
from roost.protocol.messages import Op
from roost.protocol.ops.ignoring import IgnoreArgs
from roost.protocol.ops.message import Message, OpMessages, invalid, message, shown, wire
from roost.protocol.ops.paging import PageArgs, PageSummary

__all__ = [
    "BASELINE",
    "CHANGES",
    "MESSAGES",
    "DiffArgs",
    "DiffRecord",
    "DiffResult",
    "ResetArgs",
    "ResetResult",
    "SnapshotCreateArgs",
    "SnapshotDeleteArgs",
    "SnapshotDeleteResult",
    "SnapshotListArgs",
    "SnapshotListResult",
    "SnapshotReceiveArgs",
    "SnapshotReceiveResult",
    "SnapshotRecord",
    "SnapshotSendArgs",
    "SnapshotSendResult",
    "check_snapshot_name",
]

# The snapshot taken when a workspace is created: what diff and reset go back to by default.
BASELINE = "baseline"
CHANGES = ("added", "deleted", "modified", "type_changed", "mode_changed")


def check_snapshot_name(name: object) -> str:
    """A name a snapshot can have.

    Raises:
        OpError: invalid_argument, with the rule as the hint.
    """
    if not isinstance(name, str) or not SNAPSHOT_NAME.fullmatch(name):
        raise invalid(f"invalid snapshot name {shown(name)}", hint=f"use {SNAPSHOT_NAME_RULE}")
    return name


@message
class SnapshotRecord(Message):
    """A snapshot (a `snapshot.list` record, the result of `snapshot.create`); a names-only list has the name alone.

    `stored_bytes`: what taking it added to the content store (null for one taken before the agent kept it).
    """

    OMITS_NULLS = True
    name: str = wire()
    created_at: str | None = wire(None)
    files: int | None = wire(None, minimum=0)
    size_bytes: int | None = wire(None, minimum=0)
    stored_bytes: int | None = wire(None, minimum=0)


@message
class SnapshotCreateArgs(Message):
    OP = Op.SNAPSHOT_CREATE
    name: str = wire()

    def check(self) -> None:
        check_snapshot_name(self.name)


@message
class SnapshotListArgs(PageArgs):
    """The baseline first, then by creation time; `names_only`: names alone, by name (no manifest is read)."""

    OP = Op.SNAPSHOT_LIST
    names_only: bool = wire(False)


@message
class SnapshotListResult(PageSummary):
    """Records: `SnapshotRecord`."""


@message
class SnapshotDeleteArgs(Message):
    OP = Op.SNAPSHOT_DELETE
    name: str = wire()


@message
class SnapshotDeleteResult(Message):
    name: str = wire()
    deleted: bool = wire()


@message
class SnapshotSendArgs(Message):
    """Stream snapshot `name` as a bundle on the data channel: its manifest, then each distinct content once
    (the format is the agent's `snapshots.bundle`); a workspace's `snapshot.receive` takes it as its upload."""

    OP = Op.SNAPSHOT_SEND
    name: str = wire()
    # False: the manifest alone, for a receiver whose store already holds every content (the host
    # linked the sender's packs into it: a fork that shares the content store).
    contents: bool = wire(True)

    def check(self) -> None:
        check_snapshot_name(self.name)


@message
class SnapshotSendResult(Message):
    name: str = wire()
    files: int = wire(minimum=0)
    size_bytes: int = wire(minimum=0)
    bundle_bytes: int = wire(minimum=0)


@message
class SnapshotReceiveArgs(Message):
    """Take the uploaded bundle as snapshot `name` (the baseline is replaced) and make /workspace hold it.

    Nothing in the bundle is trusted: every path, kind and mode is checked, every content hashed
    against its digest; a bad bundle changes nothing.
    """

    OP = Op.SNAPSHOT_RECEIVE
    name: str = wire(BASELINE)

    def check(self) -> None:
        check_snapshot_name(self.name)


@message
class SnapshotReceiveResult(Message):
    name: str = wire()
    files: int = wire(minimum=0)
    size_bytes: int = wire(minimum=0)
    stored_bytes: int = wire(minimum=0)
    restored: int = wire(minimum=0)


@message
class ResetArgs(Message):
    """Stop the services, close the shells, and make /workspace what `snapshot` holds."""

    OP = Op.RESET
    snapshot: str = wire(BASELINE)


@message
class ResetResult(Message):
    """What the reset restored and removed, and what it stopped first."""

    snapshot: str = wire()
    restored: int = wire(0, minimum=0)
    removed: int = wire(0, minimum=0)
    services_stopped: tuple[str, ...] = wire(())
    shells_closed: tuple[str, ...] = wire(())


@message
class DiffArgs(PageArgs, IgnoreArgs):
    """The changes from snapshot `against` to the workspace now, below `paths` (none: all), in tree order.

    Each change is a record, followed by its patch text as patch records
    (none with `stat`); `max_bytes` caps the patch text of the call (None: no cap).
    """

    OP = Op.DIFF
    against: str = wire(BASELINE)
    paths: tuple[str, ...] = wire((), name=True)
    stat: bool = wire(False)
    max_bytes: int | None = wire(None, minimum=1)

    def check(self) -> None:
        PageArgs.check(self)
        IgnoreArgs.check(self)


@message
class DiffRecord(Message):
    """A `workspace.diff` record: a change (`path` and what changed), or a piece of the last change's patch
    (`patch` alone)."""

    OMITS_NULLS = True
    path: str | None = wire(None, name=True)
    change: str | None = wire(None, choices=CHANGES)
    kind: str | None = wire(None)
    old_size: int | None = wire(None, minimum=0)
    new_size: int | None = wire(None, minimum=0)
    old_mode: int | None = wire(None, minimum=0)
    new_mode: int | None = wire(None, minimum=0)
    binary: bool | None = wire(None)
    old_target: str | None = wire(None, name=True)
    new_target: str | None = wire(None, name=True)
    patch: str | None = wire(None)

    def check(self) -> None:
        if (self.patch is None) == (self.path is None) or (self.path is not None and self.change is None):
            raise invalid("a diff record is a change (path, change, ...) or a patch piece (patch alone)")


@message
class DiffResult(PageSummary):
    """`counts`: every change by kind (not only the page's); `truncated`: the byte cap left patch text out."""

    against: str = wire(BASELINE)
    counts: dict[str, int] = wire({})
    truncated: bool = wire(False)


# This family's ops and their messages (`table.OP_TABLE` gathers every family).
MESSAGES: dict[str, OpMessages] = {
    Op.SNAPSHOT_CREATE: OpMessages(SnapshotCreateArgs, SnapshotRecord),
    Op.SNAPSHOT_LIST: OpMessages(SnapshotListArgs, SnapshotListResult, SnapshotRecord),
    Op.SNAPSHOT_DELETE: OpMessages(SnapshotDeleteArgs, SnapshotDeleteResult),
    Op.SNAPSHOT_SEND: OpMessages(SnapshotSendArgs, SnapshotSendResult),
    Op.SNAPSHOT_RECEIVE: OpMessages(SnapshotReceiveArgs, SnapshotReceiveResult),
    Op.DIFF: OpMessages(DiffArgs, DiffResult, DiffRecord),
    Op.RESET: OpMessages(ResetArgs, ResetResult),
}
