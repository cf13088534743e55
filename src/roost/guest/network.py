"""The guest's one network interface, as the kernel command line asks: `roost.net=ADDRESS/PREFIX,GATEWAY,NAMESERVER`.

The host (roost's firecracker backend) puts the guest behind a TAP device on
which roost's network gateway answers as GATEWAY and NAMESERVER; init gives
eth0 the address, a default route via GATEWAY and an /etc/resolv.conf naming
NAMESERVER. The interface is set up with ioctls (the guest image need not
have `ip`), and only IPv4: the guest gets no IPv6 route, so IPv6 attempts fail
in the guest at once.

Imports: the standard library only (this file ships inside the guest).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass

INTERFACE = "eth0"
RESOLV_CONF = "/etc/resolv.conf"
_SIOCADDRT = 0x890B
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_SIOCSIFADDR = 0x8916
_SIOCSIFNETMASK = 0x891C
_IFF_UP = 0x1
_RTF_UP, _RTF_GATEWAY = 0x1, 0x2
_IFREQ_BYTES = 40
_RTENTRY_BYTES = 120  # struct rtentry on 64-bit Linux
_APPEAR_SECONDS = 2.0


@dataclass(frozen=True)
class GuestNetwork:
    """eth0's settings."""

    address: str
    prefix: int
    gateway: str
    nameserver: str

    @property
    def resolv_conf(self) -> str:
        return f"# written by roost's init: roost's gateway answers here\nnameserver {self.nameserver}\n"


def parse_network(value: str) -> GuestNetwork | None:
    """A `roost.net=` value, or None when it is malformed (or the gateway is not on the address's subnet)."""
    parts = value.split(",")
    if len(parts) != 3:
        return None
    try:
        interface = ipaddress.IPv4Interface(parts[0])
        gateway, nameserver = ipaddress.IPv4Address(parts[1]), ipaddress.IPv4Address(parts[2])
    except ValueError:
        return None
    if "/" not in parts[0] or gateway not in interface.network or gateway == interface.ip:
        return None
    return GuestNetwork(str(interface.ip), interface.network.prefixlen, str(gateway), str(nameserver))


def _sockaddr(address: str) -> bytes:
    return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(address))


def _ifreq(name: str, payload: bytes) -> bytes:
    return (name.encode().ljust(16, b"\0") + payload).ljust(_IFREQ_BYTES, b"\0")


def _default_route(gateway: str) -> bytes:
    anywhere = _sockaddr("0.0.0.0")
    # rt_pad1, rt_dst, rt_gateway, rt_genmask, rt_flags, rt_pad2, rt_pad3, rt_pad4, rt_metric, rt_dev (NULL: found
    # from the gateway), rt_mtu, rt_window, rt_irtt.
    packed = struct.pack(
        "@L16s16s16sHhLPhPLLH",
        0,
        anywhere,
        _sockaddr(gateway),
        anywhere,
        _RTF_UP | _RTF_GATEWAY,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    )
    return packed.ljust(_RTENTRY_BYTES, b"\0")


def configure_interface(network: GuestNetwork, name: str = INTERFACE) -> None:
    """Address, netmask and up for `name`, then the default route via the gateway.

    Raises:
        OSError: the interface never appeared, or the kernel refused a step.
    """
    deadline = time.monotonic() + _APPEAR_SECONDS
    while True:
        try:
            socket.if_nametoindex(name)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise OSError(f"no network interface {name}") from None
            time.sleep(0.05)
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{network.prefix}").netmask)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, _SIOCSIFADDR, _ifreq(name, _sockaddr(network.address)))
        fcntl.ioctl(sock, _SIOCSIFNETMASK, _ifreq(name, _sockaddr(mask)))
        flags = struct.unpack_from("=H", fcntl.ioctl(sock, _SIOCGIFFLAGS, _ifreq(name, b"")), 16)[0]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, _ifreq(name, struct.pack("=H", flags | _IFF_UP)))
        fcntl.ioctl(sock, _SIOCADDRT, _default_route(network.gateway))


def write_resolv_conf(network: GuestNetwork, path: str = RESOLV_CONF) -> None:
    """Replace `path` (a symlink too: the guest's own file system) with the nameserver line."""
    partial = path + ".roost"
    with open(partial, "w", encoding="utf-8") as fh:
        fh.write(network.resolv_conf)
    os.chmod(partial, 0o644)
    os.replace(partial, path)
