"""Argument grammar and limits that the host and the agent must agree on.

The host checks arguments against these before it calls the agent, so a
bad value is refused with a clear hint before anything happens; the agent
checks the same values again because it cannot trust its caller. Keeping
the numbers here, once, is what keeps the two checks from drifting apart.

Standard library only: the guest agent imports it.
"""

from __future__ import annotations

import re

# A file offset the kernel can seek to (off_t is a signed 64-bit integer).
MAX_FILE_OFFSET = 2**63 - 1

# file.read: bytes per call.
DEFAULT_FILE_READ_BYTES = 1024 * 1024
MAX_FILE_READ_BYTES = 8 * 1024 * 1024

# shell.read: bytes per call, and how long one read may wait for quiet output.
DEFAULT_SHELL_READ_BYTES = 64 * 1024
MAX_SHELL_READ_BYTES = 4 * 1024 * 1024
MAX_SHELL_WAIT_MS = 120_000

# Terminal size of a shell, in character cells.
MAX_TERMINAL_CELLS = 1000

# Names the agent keeps records under. Service names are lower case so they
# can name log files; snapshot names may use upper case too.
SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SERVICE_NAME_RULE = "1-63 of a-z 0-9 _ . - starting with a letter or digit"
SNAPSHOT_NAME_RULE = "1-63 of A-Z a-z 0-9 _ . - starting with a letter or digit"

# diff/export --exclude: patterns per call and bytes per pattern (they travel in a request header).
MAX_EXCLUDE_PATTERNS = 64
MAX_EXCLUDE_PATTERN_BYTES = 512
# Ignore files (.gitignore, .git/info/exclude) the agent reads for --gitignore, each.
MAX_IGNORE_FILE_BYTES = 1024 * 1024

# exec: bytes of each output stream sent to the host when the call names no cap (null: no cap).
DEFAULT_EXEC_OUTPUT_BYTES = 4 * 1024 * 1024
