"""Message vocabulary on top of frames: the hello handshake, op names, error codes.

A session starts with the client sending HELLO ``{"versions": [..], "client": ..}``;
the agent answers HELLO ``{"version": v, "agent": .., "ops": [..], "limits": {..}}``
with the highest version both support, or an ERROR with code
``unsupported_version`` and closes.

Then every call is a REQUEST ``{"id": n, "op": name, "args": {..}}`` with an
optional body. When ``"upload": true`` the request body follows as DATA frames
with the same id, closed by END. The agent may send DATA frames
``{"id": n, "ch": channel}`` (process output, file or tar data) and finishes
every call with exactly one RESPONSE ``{"id": n, "result": {..}}`` or ERROR
``{"id": n, "code": .., "message": .., "hint": ..}``. A CANCEL ``{"id": n}``
asks the agent to stop a running call; the call still ends with its one
RESPONSE or ERROR.

A REQUEST may carry ``"window": bytes``: the agent then never has more than
that many bytes of DATA bodies for the call in flight unacknowledged, and
the host acknowledges what it has consumed with CREDIT ``{"id": n, "bytes":
k}``. So a host reading a stream slower than the agent makes it holds at
most one window of it. Results that grow with the workspace always stream
this way, as records (see `roost.protocol.records`).

Standard library only: the guest agent imports it.
"""

from __future__ import annotations

from typing import Any

# 2: results that grow with the workspace stream as records (never in a header),
# flow control by window and CREDIT, file names in their text form (`roost.protocol.names`).
PROTOCOL_VERSIONS: tuple[int, ...] = (2,)

# The workspace directory as every backend shows it to its processes.
GUEST_ROOT = "/workspace"

# The agent cuts streamed output into DATA frames of at most this much (well under the hard
# body limit, so a stream never needs a frame near the ceiling).
DATA_CHUNK_BYTES = 1024 * 1024
# What a host grants a streamed call: a few frames in flight keep the pipe full.
STREAM_WINDOW_BYTES = 4 * 1024 * 1024

# Channels of DATA frames.
CH_STDIN = "stdin"
CH_STDOUT = "stdout"
CH_STDERR = "stderr"
CH_DATA = "data"
CH_PTY = "pty"
CH_RECORDS = "records"


class Op:
    """Operation names. Strings on the wire; these constants avoid typos."""

    PING = "ping"
    SHUTDOWN = "shutdown"
    STATS = "stats"
    RESTORED = "restored"
    EXEC = "exec"
    FILE_LIST = "file.list"
    FILE_READ = "file.read"
    FILE_WRITE = "file.write"
    FILE_DELETE = "file.delete"
    FILE_STAT = "file.stat"
    ARCHIVE_IMPORT = "archive.import"
    ARCHIVE_EXPORT = "archive.export"
    PATCH_APPLY = "patch.apply"
    SHELL_OPEN = "shell.open"
    SHELL_LIST = "shell.list"
    SHELL_READ = "shell.read"
    SHELL_WRITE = "shell.write"
    SHELL_SIGNAL = "shell.signal"
    SHELL_RESIZE = "shell.resize"
    SHELL_CLOSE = "shell.close"
    SHELL_ATTACH = "shell.attach"
    SERVICE_START = "service.start"
    SERVICE_LIST = "service.list"
    SERVICE_STATUS = "service.status"
    SERVICE_LOGS = "service.logs"
    SERVICE_STOP = "service.stop"
    SNAPSHOT_CREATE = "snapshot.create"
    SNAPSHOT_LIST = "snapshot.list"
    SNAPSHOT_DELETE = "snapshot.delete"
    SNAPSHOT_SEND = "snapshot.send"
    SNAPSHOT_RECEIVE = "snapshot.receive"
    DIFF = "workspace.diff"
    RESET = "workspace.reset"


class Code:
    """Error codes the agent sends. Stable: hosts and users branch on them."""

    INVALID_ARGUMENT = "invalid_argument"
    UNKNOWN_OP = "unknown_op"
    PROTOCOL_ERROR = "protocol_error"
    UNSUPPORTED_VERSION = "unsupported_version"
    FRAME_TOO_LARGE = "frame_too_large"
    PATH_NOT_FOUND = "path_not_found"
    PATH_OUTSIDE_WORKSPACE = "path_outside_workspace"
    PATH_EXCLUDED = "path_excluded"
    NOT_A_DIRECTORY = "not_a_directory"
    IS_A_DIRECTORY = "is_a_directory"
    DIRECTORY_NOT_EMPTY = "directory_not_empty"
    READ_TOO_LARGE = "read_too_large"
    COMMAND_NOT_FOUND = "command_not_found"
    PERMISSION_DENIED = "permission_denied"
    ARCHIVE_REJECTED = "archive_rejected"
    PATCH_REJECTED = "patch_rejected"
    CANCELLED = "cancelled"
    SHELL_NOT_FOUND = "shell_not_found"
    SHELL_NOT_RUNNING = "shell_not_running"
    SERVICE_NOT_FOUND = "service_not_found"
    SERVICE_EXISTS = "service_exists"
    SNAPSHOT_NOT_FOUND = "snapshot_not_found"
    SNAPSHOT_EXISTS = "snapshot_exists"
    DISK_FULL = "disk_full"
    RESTORE_FAILED = "restore_failed"
    INTERNAL = "internal"


class OpError(Exception):
    """Raised by an agent operation; travels to the host as an ERROR frame."""

    def __init__(self, code: str, message: str, hint: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.details = dict(details or {})

    def to_header(self, request_id: int) -> dict[str, Any]:
        header: dict[str, Any] = {"id": request_id, "code": self.code, "message": self.message, "hint": self.hint}
        if self.details:
            header["details"] = self.details
        return header


def choose_version(offered: object) -> int | None:
    """Pick the highest protocol version both sides speak, or None."""
    if not isinstance(offered, list):
        return None
    # bool is an int subclass: JSON `true` must not pass for version 1.
    common = [v for v in offered if isinstance(v, int) and not isinstance(v, bool) and v in PROTOCOL_VERSIONS]
    return max(common) if common else None
