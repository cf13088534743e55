"""Whether a command typed into a shell is still running, as the shell's prompt marks tell.

A write that contains a line end starts a command; the next prompt mark ends
it with its exit status. Typing ahead (a second line while the first still
runs) ends at the first line's prompt: one command line per write.

Imports: this package's `ring` and the standard library only.
"""

from __future__ import annotations

import time

from roost.agent.shells.ring import ByteRing


class CommandState:
    """Follows one shell's commands: `running`, the last `status`, how many prompts it has shown."""

    def __init__(self, ring: ByteRing) -> None:
        self._ring = ring  # waiters wait on the ring, so every change here is announced through it
        self.running = False
        self.status: int | None = None
        self.prompts = 0
        self.done_at = 0  # where in the output the last prompt mark was: the end of the last command's output

    def typed(self, data: bytes) -> None:
        if b"\n" in data or b"\r" in data:
            self.running = True
            self._ring.notify()

    def prompted(self, status: int) -> None:
        self.running = False
        self.status = status
        self.done_at = self._ring.end
        self.prompts += 1
        self._ring.notify()

    def wait_first_prompt(self, timeout_s: float) -> bool:
        """Wait until the shell has shown its first prompt (True), or ended, or `timeout_s` passed."""
        give_up = time.monotonic() + timeout_s
        while self.prompts == 0 and not self._ring.closed:
            seen = self._ring.version
            left = give_up - time.monotonic()
            if left <= 0 or self.prompts:
                break
            self._ring.wait_change(seen, left)
        return self.prompts > 0
