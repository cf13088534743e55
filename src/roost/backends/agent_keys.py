"""Each workspace's identity key: made at create, kept 0600 in the workspace's directory.

The host hands the key to the workspace's agent when it starts it (an
inherited pipe for host-process agents, the kernel command line for a
microVM's) and checks the agent's proof on every connection (see
protocol.identity). The key is never in a record or a result.

Imports: errors, protocol and the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

from roost.errors import CHECK_WORKSPACE, AgentError
from roost.protocol.identity import AgentIdentity, new_key

KEY_FILE = "agent.key"


def identity_of(ws_dir: Path, ws_id: str, *, create: bool = False) -> AgentIdentity:
    """The workspace's identity key, kept 0600 in its directory (made with `create`).

    Raises:
        AgentError: agent_unreachable when the key is missing or unreadable.
    """
    path = ws_dir / KEY_FILE
    if create and not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(new_key())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as source:
            key = source.read()
    except OSError as exc:
        raise AgentError(
            f"the workspace's identity key is unreadable ({exc.strerror})",
            code="agent_unreachable",
            remedy=CHECK_WORKSPACE,
        ) from None
    return AgentIdentity(ws_id, key)
