"""The sandbox's CA bundle: the env's own bundle plus the workspace's CA, bound read-only where TLS clients look.

roost's gateway ends TLS for hosts that proxy-mode secrets go to with a
certificate the workspace's CA signed, so the workspace must trust that CA.
The bundle is built on the host from the env's rootfs (roost's cache, never
the workspace's writable layers, each path component opened without
following a link) and handed to bwrap as a memfd it copies to
TRUST_PATH (`--ro-bind-data`): nothing on the host is written.
TRUST_VARIABLES point the usual clients (OpenSSL and Python's ssl, requests,
curl, pip, node, git) at it too.

Imports: the standard library only.
"""

from __future__ import annotations

import os
import stat

__all__ = ["TRUST_PATH", "TRUST_VARIABLES", "trust_bundle"]

TRUST_PATH = "/etc/ssl/certs/ca-certificates.crt"
TRUST_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
)
_MAX_BUNDLE = 16 << 20


def trust_bundle(rootfs: str, ca_pem: bytes) -> int:
    """A memfd (offset 0) holding the env's CA bundle (if it has a regular one) followed by `ca_pem`."""
    own = _read_in_tree(rootfs, TRUST_PATH)
    data = (own.rstrip(b"\n") + b"\n" if own else b"") + ca_pem
    fd = os.memfd_create("roost-ca-bundle", 0)  # inherited by bwrap, which reads it whole
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


def _read_in_tree(root: str, path: str) -> bytes:
    """`path` inside `root`, every component opened without following a link; b"" when that fails."""
    parts = [part for part in path.split("/") if part]
    try:
        current = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        for part in parts[:-1]:
            following = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
            os.close(current)
            current = following
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=current)
    except OSError:
        return b""
    finally:
        os.close(current)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return b""
        return fh.read(_MAX_BUNDLE)
