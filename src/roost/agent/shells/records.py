"""Shell records: the persisted facts of each PTY shell, and their states.

States: `running` -> `exited` (the shell ended, with its exit code) or
`closed` (someone closed it); a record found `running` when a new agent
starts belongs to an agent that is gone, so it becomes `lost`. Records live
under the agent's state dir, outside /workspace, one JSON file each,
replaced atomically.

Imports: the agent's `fs` and `system` layers, protocol's op messages and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from roost.agent.fs.atomic_json import write_json
from roost.agent.system.clock import now_iso
from roost.protocol.ops.shells import ShellState

RUNNING, EXITED, CLOSED, LOST = "running", "exited", "closed", "lost"
_TRANSITIONS = {RUNNING: {EXITED, CLOSED, LOST}, EXITED: {CLOSED}, CLOSED: set(), LOST: {CLOSED}}


@dataclass(frozen=True)
class ShellRecord:
    id: str
    command: list[str]
    cwd: str
    cols: int
    rows: int
    state: str
    created_at: str
    pid: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    closed_at: str | None = None

    def moved_to(self, state: str, **changes: Any) -> ShellRecord:
        if state != self.state and state not in _TRANSITIONS[self.state]:
            raise ValueError(f"a {self.state} shell cannot become {state}")
        return dataclasses.replace(self, state=state, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_state(self) -> ShellState:
        """The shell as the agent reports it (`shell.open`, `shell.close`, the `shell.list` records)."""
        fields = self.to_dict()
        return ShellState(**{**fields, "command": tuple(self.command)})


class ShellRecordStore:
    """One JSON file per shell under `<state_dir>/shells`."""

    def __init__(self, state_dir: str) -> None:
        self.dir = os.path.join(state_dir, "shells")

    def save(self, record: ShellRecord) -> None:
        write_json(os.path.join(self.dir, f"{record.id}.json"), record.to_dict())

    def load_all(self) -> list[ShellRecord]:
        if not os.path.isdir(self.dir):
            return []
        known = {f.name for f in dataclasses.fields(ShellRecord)}
        records = []
        for name in sorted(os.listdir(self.dir)):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.dir, name)) as fh:
                    data = json.load(fh)
                records.append(ShellRecord(**{k: v for k, v in data.items() if k in known}))
            except (OSError, ValueError, TypeError):
                continue  # a torn file from a crash: nothing to show for it
        return records

    def adopt_previous(self) -> list[ShellRecord]:
        """Load records left by an earlier agent, marking its running shells lost."""
        records = []
        for record in self.load_all():
            if record.state == RUNNING:
                record = record.moved_to(LOST, closed_at=now_iso())
                self.save(record)
            records.append(record)
        return records
