"""Spellings of the places an agent listens, shared by host and agent.

``unix:PATH``, ``vsock:PORT`` or ``fd:N``; never a network address.
Standard library only: the guest agent imports it.
"""

from __future__ import annotations

import os
import socket

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


def bind_private(sock: socket.socket, path: str) -> None:
    """Bind the unix socket `sock` at `path` (of any length) for its owner only (mode 0600).

    The mode is set after the bind, never through the umask: that is the whole process's, and
    another thread may be creating files meanwhile. Until the chmod the socket has the mode its
    directory allows it; callers bind in a directory only their user can enter.
    """
    address, dir_fd = unix_sockaddr(path)
    try:
        sock.bind(address)
        os.chmod(address, 0o600)
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
