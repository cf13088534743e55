"""The inner helper: a process that joins a workspace's network namespace, bars it, and makes sockets there.

The gateway starts it (`python -m roost.network.inner PID FD`) with one
end of a SOCK_SEQPACKET socketpair. It joins the user namespace of process
PID and then its network namespace W (roost's user owns that user
namespace, so no root is needed), and sets W up once:

- RESOLVER_ADDRESS (roost's DNS) and SOURCE_ADDRESS (the workspace's own
  address) on lo, and `local default dev lo src SOURCE_ADDRESS`: every
  destination is local, so outbound packets loop back through lo;
- an nftables table whose prerouting chain keeps loopback and roost's
  addresses, hands every other TCP and UDP packet to two transparent
  sockets (TPROXY), and drops the rest (ICMP, other protocols).

A namespace holding a link named GUEST_LINK (`tap0`: a Firecracker VMM's
namespace) has its workspace behind that link rather than inside: the guest
is SOURCE_ADDRESS on the far side of the TAP, with RESOLVER_ADDRESS as its
gateway. There SOURCE_ADDRESS is routed out of the TAP (a /32 in the local
table, which beats `local default`) instead of sitting on lo, packets from
the TAP are caught by the same prerouting chain, and on the TAP the
namespace's own addresses take only DNS (and replies to connections the
helper opened to the guest for published ports, which go to SOURCE_ADDRESS
instead of 127.0.0.1).

Then it serves the gateway: each request names a socket to make inside W
and the answer carries it (SCM_RIGHTS). The gateway holds those sockets
and does all deciding and connecting from the host's namespace. Root inside
the workspace can rewrite W's rules, but W's only way out is still these
sockets. The helper runs nothing of the workspace's, is not in its pid
namespace, and exits when the gateway's end closes (or the gateway dies).

`SocketFactory` is the gateway's side of the socketpair.

Imports: the standard library only (it runs before anything else is needed).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
from typing import Any

__all__ = [
    "GUEST_LINK",
    "GUEST_PREFIX",
    "RESOLVER_ADDRESS",
    "SOURCE_ADDRESS",
    "SocketFactory",
    "original_destination",
]

RESOLVER_ADDRESS = "100.96.0.1"
SOURCE_ADDRESS = "100.96.0.2"
# A guest behind a TAP: SOURCE_ADDRESS/GUEST_PREFIX on its side, RESOLVER_ADDRESS its gateway.
GUEST_LINK = "tap0"
GUEST_PREFIX = 30
# Linux constants the socket module does not name.
IP_TRANSPARENT = 19
IP_RECVORIGDSTADDR = 20
IPV6_RECVORIGDSTADDR = 74
IPV6_TRANSPARENT = 75
_PR_SET_PDEATHSIG = 1
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE = 47, 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# What `ip` and `nft` need in the namespace: CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW.
_NETWORK_CAPABILITIES = (10, 12, 13)
_TABLE = "roost"
_MESSAGE_BYTES = 4096
_TOOL_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
_START_SECONDS = 10.0


def original_destination(ancillary: list[tuple[int, int, bytes]]) -> tuple[str, int] | None:
    """The original destination of a datagram received with IP_RECVORIGDSTADDR."""
    for level, kind, data in ancillary:
        if level == socket.SOL_IP and kind == IP_RECVORIGDSTADDR and len(data) >= 8:
            port = struct.unpack("!H", data[2:4])[0]
            return socket.inet_ntoa(data[4:8]), port
        if level == socket.IPPROTO_IPV6 and kind == IPV6_RECVORIGDSTADDR and len(data) >= 24:
            port = struct.unpack("!H", data[2:4])[0]  # sockaddr_in6: family, port, flow info, address
            return socket.inet_ntop(socket.AF_INET6, data[8:24]), port
    return None


class SocketFactory:
    """The gateway's end: asks the inner helper for sockets made inside the workspace's namespace."""

    def __init__(self, channel: socket.socket) -> None:
        self._channel = channel
        self._lock = threading.Lock()

    @classmethod
    def start(cls, pid: int) -> tuple[SocketFactory, subprocess.Popen[bytes], dict[str, socket.socket]]:
        """Start the helper in the namespaces of process `pid`: the factory, the helper, and its first
        sockets by name: `tcp` (TPROXY listener), `udp` (TPROXY), `dns_udp`, `dns_tcp` (listener),
        and `tcp6`, `udp6` where the kernel has IPv6.

        Raises:
            OSError: the helper could not join or set up the namespace (its message says why).
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        # Run by path, not as roost.network.inner: nothing of roost is imported into the namespace.
        process = subprocess.Popen(
            [sys.executable, "-I", __file__, str(pid), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        factory = cls(ours)
        ours.settimeout(_START_SECONDS)
        try:
            answer, sockets = factory._receive()
        except BaseException:
            process.kill()
            process.wait()
            ours.close()
            raise
        ours.settimeout(None)
        return factory, process, dict(zip(answer["ready"], sockets, strict=True))

    def request(self, op: str, **arguments: Any) -> tuple[dict[str, Any], list[socket.socket]]:
        """The helper's answer to `op` and the sockets it carried.

        Raises:
            OSError: the helper refused (its errno and message) or is gone.
        """
        with self._lock:
            self._channel.sendall(json.dumps({"op": op, **arguments}).encode())
            return self._receive()

    def _receive(self) -> tuple[dict[str, Any], list[socket.socket]]:
        data, fds, _flags, _address = socket.recv_fds(self._channel, _MESSAGE_BYTES, 8)
        if not data:
            raise ConnectionError("the inner network helper has gone")
        answer = json.loads(data)
        sockets = [socket.socket(fileno=fd) for fd in fds]
        if "error" in answer:
            for sock in sockets:
                sock.close()
            raise OSError(int(answer.get("errno", 0)), str(answer["error"]))
        return answer, sockets

    def close(self) -> None:
        self._channel.close()


def _join_namespaces(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    for fd, own in ((user_fd, "/proc/self/ns/user"), (net_fd, "/proc/self/ns/net")):
        if os.fstat(fd).st_ino != os.stat(own).st_ino and libc.setns(fd, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {own.rsplit('/', 1)[1]} of process {pid}: {os.strerror(error)}")
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32))


def _keep_capabilities_across_exec() -> None:
    """Make `ip` and `nft` inherit the network capabilities joining the user namespace gave.

    Whoever runs roost is usually not mapped to root in the workspace's user
    namespace, and execve drops a non-root process's capabilities unless
    they are ambient.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for capability in _NETWORK_CAPABILITIES:
        data[0].inheritable |= 1 << capability
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    for capability in _NETWORK_CAPABILITIES:
        if libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, capability, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"raising ambient capability {capability}")


def _run(*command: str, stdin: str | None = None) -> None:
    tool = shutil.which(command[0], path=_TOOL_PATH) or command[0]
    result = subprocess.run([tool, *command[1:]], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(0, f"{' '.join(command)}: {result.stderr.strip() or result.returncode}")


def _rules(tcp_port: int, udp_port: int, guest_link: str | None) -> str:
    return f"""table ip {_TABLE} {{}}
delete table ip {_TABLE}
table ip {_TABLE} {{
    chain prerouting {{
        type filter hook prerouting priority mangle; policy accept;
{_guest_link_rules(guest_link)}        ip daddr {{ 127.0.0.0/8, {RESOLVER_ADDRESS}, {SOURCE_ADDRESS} }} accept
        meta l4proto tcp tproxy to 127.0.0.1:{tcp_port} accept
        meta l4proto udp tproxy to 127.0.0.1:{udp_port} accept
        drop
    }}
}}
"""


def _guest_link_rules(guest_link: str | None) -> str:
    """From the guest's link, the namespace's own addresses take DNS and replies to connections
    the helper opened (published ports), never a new connection to anything else."""
    if guest_link is None:
        return ""
    link = f'iifname "{guest_link}" ip daddr'
    return (
        f"        {link} {RESOLVER_ADDRESS} meta l4proto {{ tcp, udp }} th dport 53 accept\n"
        f"        {link} {RESOLVER_ADDRESS} tcp flags & (syn | ack) != syn accept\n"
        f"        {link} {{ 127.0.0.0/8, {RESOLVER_ADDRESS}, {SOURCE_ADDRESS} }} drop\n"
    )


def _rules6(tcp_port: int, udp_port: int) -> str:
    return f"""table ip6 {_TABLE} {{}}
delete table ip6 {_TABLE}
table ip6 {_TABLE} {{
    chain prerouting {{
        type filter hook prerouting priority mangle; policy accept;
        ip6 daddr ::1 accept
        meta l4proto tcp tproxy to [::1]:{tcp_port} accept
        meta l4proto udp tproxy to [::1]:{udp_port} accept
        drop
    }}
}}
"""


def _transparent(kind: int, address: str, port: int) -> socket.socket:
    six = ":" in address
    sock = socket.socket(socket.AF_INET6 if six else socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    level = socket.IPPROTO_IPV6 if six else socket.SOL_IP
    sock.setsockopt(level, IPV6_TRANSPARENT if six else IP_TRANSPARENT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if kind == socket.SOCK_DGRAM:
        sock.setsockopt(level, IPV6_RECVORIGDSTADDR if six else IP_RECVORIGDSTADDR, 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(1024)
    return sock


def _guest_link() -> str | None:
    """GUEST_LINK when this namespace has it (the workspace is a guest behind it), else None."""
    try:
        socket.if_nametoindex(GUEST_LINK)
    except OSError:
        return None
    return GUEST_LINK


def _address_namespace(guest_link: str | None) -> None:
    """Every destination local; the workspace's own address on lo, or behind its guest link."""
    _run("ip", "link", "set", "lo", "up")
    _run("ip", "addr", "replace", f"{RESOLVER_ADDRESS}/32", "dev", "lo")
    if guest_link is None:
        _run("ip", "addr", "replace", f"{SOURCE_ADDRESS}/32", "dev", "lo")
        _run("ip", "route", "replace", "local", "default", "dev", "lo", "src", SOURCE_ADDRESS)
        return
    _run("ip", "link", "set", guest_link, "up")
    _run("ip", "route", "replace", "local", "default", "dev", "lo", "src", RESOLVER_ADDRESS)
    route = ("ip", "route", "replace", f"{SOURCE_ADDRESS}/32", "dev", guest_link, "src", RESOLVER_ADDRESS)
    _run(*route, "table", "local")


def _bar_namespace(guest_link: str | None) -> dict[str, socket.socket]:
    """Set W up; the sockets every gateway needs by name: TPROXY TCP and UDP, DNS over UDP and TCP
    (and TPROXY TCP and UDP for IPv6, where the kernel has it)."""
    _address_namespace(guest_link)
    tcp = _transparent(socket.SOCK_STREAM, "127.0.0.1", 0)
    udp = _transparent(socket.SOCK_DGRAM, "127.0.0.1", 0)
    dns_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    dns_udp.bind((RESOLVER_ADDRESS, 53))
    dns_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    dns_tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    dns_tcp.bind((RESOLVER_ADDRESS, 53))
    dns_tcp.listen(128)
    _run("nft", "-f", "-", stdin=_rules(tcp.getsockname()[1], udp.getsockname()[1], guest_link))
    return {"tcp": tcp, "udp": udp, "dns_udp": dns_udp, "dns_tcp": dns_tcp, **_bar_ipv6()}


def _bar_ipv6() -> dict[str, socket.socket]:
    """IPv6 is never routed out; it is caught too, only so each attempt is refused and logged."""
    if not os.path.exists("/proc/net/if_inet6"):
        return {}  # no IPv6 in this kernel: nothing to catch
    _run("ip", "-6", "route", "replace", "local", "default", "dev", "lo")
    tcp6 = _transparent(socket.SOCK_STREAM, "::1", 0)
    udp6 = _transparent(socket.SOCK_DGRAM, "::1", 0)
    _run("nft", "-f", "-", stdin=_rules6(tcp6.getsockname()[1], udp6.getsockname()[1]))
    return {"tcp6": tcp6, "udp6": udp6}


def _make(request: dict[str, Any], workspace_host: str) -> socket.socket:
    op = request.get("op")
    if op == "udp_reply":  # sends replies from the flow's original destination
        return _transparent(socket.SOCK_DGRAM, str(request["address"]), int(request["port"]))
    if op == "connect":  # a published port: the workspace's own loopback, or its guest
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        sock.connect_ex((workspace_host, int(request["port"])))
        return sock
    raise OSError(0, f"unknown request {op!r}")


def _serve(channel: socket.socket, workspace_host: str) -> None:
    while True:
        data = channel.recv(_MESSAGE_BYTES)
        if not data:
            return
        try:
            sock = _make(json.loads(data), workspace_host)
        except (OSError, ValueError, KeyError) as exc:
            channel.sendall(json.dumps({"error": _message(exc), "errno": getattr(exc, "errno", 0) or 0}).encode())
            continue
        socket.send_fds(channel, [b"{}"], [sock.fileno()])
        sock.close()


def _message(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else None) or str(exc)


def main(argv: list[str]) -> int:
    pid, fd = int(argv[0]), int(argv[1])
    channel = socket.socket(fileno=fd)
    try:
        _join_namespaces(pid)
        _keep_capabilities_across_exec()
        guest_link = _guest_link()
        ready = _bar_namespace(guest_link)
    except OSError as exc:
        channel.sendall(json.dumps({"error": _message(exc), "errno": exc.errno or 0}).encode())
        return 1
    names = list(ready)
    socket.send_fds(channel, [json.dumps({"ready": names}).encode()], [ready[name].fileno() for name in names])
    for sock in ready.values():
        sock.close()
    _serve(channel, "127.0.0.1" if guest_link is None else SOURCE_ADDRESS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
