"""Spellings of the places an agent listens, shared by host and agent.

``unix:PATH``, ``vsock:PORT`` or ``fd:N``; never a network address.
Standard library only: the guest agent imports it.
"""

from __future__ import annotations

import os

# sockaddr_un holds 108 bytes; leave room for the terminating NUL and margin.
_SUN_PATH_MAX = 100


def unix_sockaddr(path: str) -> tuple[str, int | None]:
    """Return a bind/connect address for `path` and the dir fd it borrows.

    Paths too long for sockaddr_un are reached as ``/proc/self/fd/N/name``
    through an open descriptor of their directory; the caller closes the
    descriptor (second item) once bind or connect has returned.
    """
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path, None
    directory, name = os.path.split(os.path.abspath(path))
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{name}", fd
