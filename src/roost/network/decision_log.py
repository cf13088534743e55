"""The decision log: one JSON line per verdict the gateway gives, bounded, read back as `Decision`s.

The file is NET_DIR/decisions.jsonl (NET_DIR is the workspace's network
state, outside /workspace, 0700). At `MAX_LOG_BYTES` it is renamed to
decisions.jsonl.1 (replacing the older one) and a new file is begun, so a
workspace keeps at most two files' worth. A line holds the time (ISO 8601,
UTC), the destination name (or null), address, port, protocol (`tcp`,
`udp`, `dns`), verdict (`allowed`, `denied`), a reason word and, for a
proxy secret's placeholder seen going elsewhere, the secret's name; never a
payload, so never a secret's value.

Imports: the standard library only.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["LOG_NAME", "MAX_LOG_BYTES", "Decision", "DecisionLog", "read_decisions"]

LOG_NAME = "decisions.jsonl"
MAX_LOG_BYTES = 1 << 20
_FOLLOW_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Decision:
    """One verdict on one flow or DNS query."""

    time: str
    name: str | None
    address: str
    port: int
    protocol: str
    verdict: str
    reason: str
    secret: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(
            time=str(data["time"]),
            name=None if data.get("name") is None else str(data["name"]),
            address=str(data.get("address", "")),
            port=int(data.get("port", 0)),
            protocol=str(data["protocol"]),
            verdict=str(data["verdict"]),
            reason=str(data.get("reason", "")),
            secret=None if data.get("secret") is None else str(data["secret"]),
        )


class DecisionLog:
    """Appends decisions to NET_DIR/decisions.jsonl, rotating at `max_bytes`. Thread-safe."""

    def __init__(self, net_dir: Path, max_bytes: int = MAX_LOG_BYTES) -> None:
        self._path = net_dir / LOG_NAME
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def record(
        self,
        *,
        name: str | None,
        address: str,
        port: int,
        protocol: str,
        allowed: bool,
        reason: str,
        secret: str | None = None,
    ) -> Decision:
        decision = Decision(
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            name=name,
            address=address,
            port=port,
            protocol=protocol,
            verdict="allowed" if allowed else "denied",
            reason=reason,
            secret=secret,
        )
        fields = {key: value for key, value in asdict(decision).items() if key != "secret" or value is not None}
        line = (json.dumps(fields, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                if self._path.stat().st_size + len(line) > self._max_bytes:
                    os.replace(self._path, self._path.with_name(LOG_NAME + ".1"))
            except FileNotFoundError:
                pass
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return decision


def read_decisions(
    net_dir: Path, *, denied_only: bool = False, follow: bool = False, stop: Callable[[], bool] | None = None
) -> Iterator[Decision]:
    """The logged decisions, oldest first (the rotated file's, then the current's).

    With `follow`, keeps yielding new ones as they are written (across a
    rotation) until `stop()` is true, and then those written before it was;
    lines that do not parse are skipped.
    """
    path = net_dir / LOG_NAME
    for decision in _read_lines(path.with_name(LOG_NAME + ".1"), 0)[0]:
        if not denied_only or decision.verdict == "denied":
            yield decision
    offset, identity = 0, _identity(path)
    finishing = False
    while True:
        decisions, offset = _read_lines(path, offset)
        for decision in decisions:
            if not denied_only or decision.verdict == "denied":
                yield decision
        if not follow or finishing:
            return
        # Once told to stop, one more read: what was written before `stop()` turned true is yielded.
        finishing = stop is not None and stop()
        if not finishing:
            time.sleep(_FOLLOW_POLL_SECONDS)
        current = _identity(path)
        if current != identity:  # rotated: finish the old file (now .1), then start the new one
            rotated = path.with_name(LOG_NAME + ".1")
            if identity is not None and _identity(rotated) == identity:
                for decision in _read_lines(rotated, offset)[0]:
                    if not denied_only or decision.verdict == "denied":
                        yield decision
            offset, identity = 0, current


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino)


def _read_lines(path: Path, offset: int) -> tuple[list[Decision], int]:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    decisions = []
    for line in complete.splitlines():
        try:
            decisions.append(Decision.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return decisions, offset + len(complete)
