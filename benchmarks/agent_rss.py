"""Resident memory of an idle guest agent right after workspace creation: target < 20 MB (MiB).

The agent pid comes from the workspace record (`boot.agent_pid`); when a
backend records none, the agent is found in /proc by its home in its command line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks._harness import BACKEND, ENV, Result, Settings, measured, rss_mib, temp_home

DESCRIPTION = "VmRSS of the idle agent process after workspace create, mock backend"
# Let the freshly started agent finish its start-up before it is measured.
SETTLE_SECONDS = 0.3


def _find_agent(boot: dict[str, object], home: Path) -> int:
    pid = boot.get("agent_pid")
    if isinstance(pid, int):
        return pid
    needle = str(home).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"roost.agent" in cmdline and needle in cmdline:
                return int(entry)
    raise RuntimeError("cannot find the agent process")


def run(settings: Settings) -> Result:
    from roost import Roost

    with temp_home() as home, Roost(home=home, backend=BACKEND) as roost:
        ws = roost.create_workspace(ENV)
        try:
            boot = roost._engine.store.load(ws.id).boot
            pid = _find_agent({} if boot is None else boot.to_json(), home)
            time.sleep(SETTLE_SECONDS)
            idle_mib = rss_mib(pid)
            ws.exec(["true"])
            after_exec_mib = rss_mib(pid)
        finally:
            ws.delete(force=True)
    stats = {"rss_idle": round(idle_mib, 2)}
    return measured(DESCRIPTION, "MiB", stats, "rss_idle", "<", 20.0, rss_after_one_exec=round(after_exec_mib, 2))
