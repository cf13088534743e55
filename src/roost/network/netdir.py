"""What a workspace's NET_DIR holds for its gateway, and whether the process a record names still runs.

NET_DIR (the workspace's network state, 0700, outside /workspace) holds
CONFIG_NAME (what the gateway serves: namespace pid, policy, ports), the
control socket, the decision log and the gateway's own log. This module is
light on purpose: the front ends import it without the gateway's parts.

Imports: the standard library only.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_NAME", "GATEWAY_LOG_NAME", "process_start_time"]

CONFIG_NAME = "gateway.json"
GATEWAY_LOG_NAME = "gateway.log"


def process_start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc); None when none runs (or it is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]
