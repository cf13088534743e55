"""Threads for the agent's requests, kept for the next request instead of started for each.

Every request runs on a thread of its own (a long exec never holds up a file
read), but starting a thread costs a clone and a handshake with the starter on
each call. `Workers` hands a request to a thread left idle by an earlier one
and starts a new thread only when none is free; a thread that stays idle for
`IDLE_SECONDS` ends, so an agent that was busy once does not keep its peak.

Imports: the standard library only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("roost.agent")

IDLE_SECONDS = 30.0

Job = Callable[[], None]


class Workers:
    """Runs each submitted job at once on a thread of its own, reusing idle threads."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list[_Slot] = []

    def submit(self, job: Job, name: str) -> None:
        """Start `job` now: on an idle thread (renamed `name`) if there is one, else on a new thread."""
        with self._lock:
            slot = self._idle.pop() if self._idle else None
        if slot is not None:
            slot.give(job, name)
            return
        slot = _Slot()
        slot.give(job, name)
        threading.Thread(target=self._serve, args=(slot,), name=name, daemon=True).start()

    def idle(self) -> int:
        """How many threads are waiting for a job."""
        with self._lock:
            return len(self._idle)

    def _serve(self, slot: _Slot) -> None:
        while True:
            job = slot.take()
            try:
                job()
            except Exception:  # a job's own failure must not cost the agent a thread
                log.exception("%s failed", threading.current_thread().name)
            del job  # what the job held is freed now, not when the next one comes
            with self._lock:
                self._idle.append(slot)
            if not slot.wait(self._idle_seconds):
                with self._lock:
                    if slot in self._idle:  # no submit took it between the timeout and this lock
                        self._idle.remove(slot)
                        return
                # A submit took this slot just as it timed out: its job is on the way.
                slot.wait(None)


class _Slot:
    """One thread's mailbox: at most one job waits in it."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._job: Job | None = None
        self._name = ""

    def give(self, job: Job, name: str) -> None:
        self._job, self._name = job, name
        self._ready.set()

    def wait(self, timeout: float | None) -> bool:
        return self._ready.wait(timeout)

    def take(self) -> Job:
        self._ready.wait()
        self._ready.clear()
        job, self._job = self._job, None
        assert job is not None
        threading.current_thread().name = self._name
        return job
