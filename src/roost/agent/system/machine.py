"""Machine-wide settings a microVM restored from a template must renew: the agent's only calls that change them.

Every clone of a template resumes with the template's memory: the same
kernel entropy pool, a clock stopped at the moment of the snapshot, the same
hostname and machine-id. `OsMachine` renews each; all of them need root in
the guest (CAP_SYS_ADMIN, CAP_SYS_TIME), which the agent has there.

Imports: the standard library only.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import time

RANDOM_DEVICE = "/dev/random"
MACHINE_ID_PATH = "/etc/machine-id"
# linux/random.h: _IOW('R', 0x03, int[2]) takes a struct rand_pool_info {int entropy_count; int buf_size; u32 buf[]}.
RNDADDENTROPY = 0x40085203


class OsMachine:
    """The guest's entropy pool, clock, hostname and machine-id."""

    def add_entropy(self, data: bytes) -> int:
        """Mix `data` into the kernel's pool and credit it as fully random (the host's CSPRNG made
        it): a plain write to /dev/random would mix it in without credit. Returns the bits credited.

        Raises:
            OSError: not permitted (no CAP_SYS_ADMIN) or no random device.
        """
        bits = len(data) * 8
        info = struct.pack("ii", bits, len(data)) + data
        fd = os.open(RANDOM_DEVICE, os.O_WRONLY | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, RNDADDENTROPY, info)
        finally:
            os.close(fd)
        return bits

    def set_clock(self, unix_time_ns: int) -> None:
        """Raises: OSError: not permitted (no CAP_SYS_TIME)."""
        time.clock_settime_ns(time.CLOCK_REALTIME, unix_time_ns)

    def set_hostname(self, name: str) -> None:
        """Raises: OSError: not permitted."""
        socket.sethostname(name)

    def set_machine_id(self, machine_id: str, path: str = MACHINE_ID_PATH) -> None:
        """Replace the machine-id file (by rename: never a half-written id).

        Raises:
            OSError: the directory cannot be written.
        """
        partial = f"{path}.roost-new"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o444)
        try:
            os.write(fd, f"{machine_id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
