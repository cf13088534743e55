"""The op table: each op's name and the message types of its arguments and its result.

Both sides walk it: the agent decodes a request's arguments with the op's
`args` type before its handler runs, the host builds those same types, and
a test checks every op has both. `records` names the record type of an op
whose result streams as records.

Imports: every message module of this package; standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from roost.protocol.messages import Op
from roost.protocol.ops import agent, execs, files, services, shells, snapshots, transfer
from roost.protocol.ops.message import Message

__all__ = ["OP_TABLE", "OpMessages"]


@dataclass(frozen=True)
class OpMessages:
    """One op's messages: what it takes, what it answers and, when it streams records, their shape."""

    args: type[Message]
    result: type[Message]
    records: type[Message] | None = None


OP_TABLE: dict[str, OpMessages] = {
    Op.PING: OpMessages(agent.PingArgs, agent.PingResult),
    Op.SHUTDOWN: OpMessages(agent.ShutdownArgs, agent.ShutdownResult),
    Op.EXEC: OpMessages(execs.ExecArgs, execs.ExecOutcome),
    Op.FILE_LIST: OpMessages(files.FileListArgs, files.FileListResult, files.FileRecord),
    Op.FILE_READ: OpMessages(files.FileReadArgs, files.FileReadResult),
    Op.FILE_WRITE: OpMessages(files.FileWriteArgs, files.FileWriteResult),
    Op.FILE_DELETE: OpMessages(files.FileDeleteArgs, files.FileDeleteResult),
    Op.FILE_STAT: OpMessages(files.FileStatArgs, files.FileRecord),
    Op.ARCHIVE_IMPORT: OpMessages(transfer.ArchiveImportArgs, transfer.ArchiveImportResult),
    Op.ARCHIVE_EXPORT: OpMessages(transfer.ArchiveExportArgs, transfer.ArchiveExportResult),
    Op.PATCH_APPLY: OpMessages(transfer.PatchApplyArgs, transfer.PatchApplyResult, transfer.PatchedFileRecord),
    Op.SHELL_OPEN: OpMessages(shells.ShellOpenArgs, shells.ShellState),
    Op.SHELL_LIST: OpMessages(shells.ShellListArgs, shells.ShellListResult, shells.ShellState),
    Op.SHELL_READ: OpMessages(shells.ShellReadArgs, shells.ShellReadResult),
    Op.SHELL_WRITE: OpMessages(shells.ShellWriteArgs, shells.ShellWriteResult),
    Op.SHELL_SIGNAL: OpMessages(shells.ShellSignalArgs, shells.ShellSignalResult),
    Op.SHELL_RESIZE: OpMessages(shells.ShellResizeArgs, shells.ShellResizeResult),
    Op.SHELL_CLOSE: OpMessages(shells.ShellCloseArgs, shells.ShellState),
    Op.SHELL_ATTACH: OpMessages(shells.ShellAttachArgs, shells.ShellAttachResult),
    Op.SERVICE_START: OpMessages(services.ServiceStartArgs, services.ServiceState),
    Op.SERVICE_LIST: OpMessages(services.ServiceListArgs, services.ServiceListResult, services.ServiceState),
    Op.SERVICE_STATUS: OpMessages(services.ServiceStatusArgs, services.ServiceState),
    Op.SERVICE_LOGS: OpMessages(services.ServiceLogsArgs, services.ServiceLogsResult),
    Op.SERVICE_STOP: OpMessages(services.ServiceStopArgs, services.ServiceState),
    Op.SNAPSHOT_CREATE: OpMessages(snapshots.SnapshotCreateArgs, snapshots.SnapshotRecord),
    Op.SNAPSHOT_LIST: OpMessages(snapshots.SnapshotListArgs, snapshots.SnapshotListResult, snapshots.SnapshotRecord),
    Op.SNAPSHOT_DELETE: OpMessages(snapshots.SnapshotDeleteArgs, snapshots.SnapshotDeleteResult),
    Op.DIFF: OpMessages(snapshots.DiffArgs, snapshots.DiffResult, snapshots.DiffRecord),
    Op.RESET: OpMessages(snapshots.ResetArgs, snapshots.ResetResult),
}
