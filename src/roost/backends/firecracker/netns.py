"""The VMM's own network namespace, holding the one TAP device its guest's eth0 sits on.

Every Firecracker workspace's VMM runs in a network namespace of its own
with one TAP device, `tap0` (GUEST_LINK), made there before the VMM opens it
through `PUT /network-interfaces/eth0`. The guest is told its address on the
kernel command line (`guest_network_arg`; roost's guest init applies it) and
is SOURCE_ADDRESS with RESOLVER_ADDRESS as its gateway and resolver: the
addresses roost's network gateway serves (`roost.network.inner`), which joins
that namespace through the VMM's pid. With no gateway attached (policy
`off`) the namespace has no way out at all.

- Unjailed: `unshare --user --map-root-user --net` then a shell that makes
  the TAP and execs the VMM, so the namespace is owned by a user namespace
  roost's user owns (no root needed, as the sandbox's) and goes with the VMM's
  last process; nothing is named on the host.
- Jailed (root): a named namespace `roost-<ws id>` (`ip netns add`) with the
  TAP owned by the jail's uid, handed to the jailer with `--netns`, and
  removed (`remove_named`) when the VMM is killed.

Imports: errors, network.inner (its address constants; stdlib-only) and the standard library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence

from roost.errors import BackendError
from roost.network.inner import GUEST_LINK, GUEST_PREFIX, RESOLVER_ADDRESS, SOURCE_ADDRESS

__all__ = [
    "GUEST_IFACE",
    "GUEST_LINK",
    "guest_mac",
    "guest_network_arg",
    "in_own_namespace",
    "make_named",
    "named_path",
    "remove_named",
    "unshared_argv",
]

GUEST_IFACE = "eth0"
NAMED_PREFIX = "roost-"
_TOOL_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
_NETNS_DIR = "/run/netns"
# Run by `sh -ec SCRIPT roost-vmm VMM ARGS...` inside the new namespaces; $1 is the `ip` binary.
_MAKE_TAP_THEN_EXEC = (
    f'ip="$1"; shift; "$ip" tuntap add dev {GUEST_LINK} mode tap; "$ip" link set {GUEST_LINK} up; exec "$@"'
)


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":" + _TOOL_PATH)
    if found is None:
        raise BackendError(
            f"{name} is not installed; the firecracker backend needs it for the VM's network device",
            code="backend_start_failed",
            hint="install util-linux and iproute2",
        )
    return found


def guest_mac(ws_id: str) -> str:
    """The guest's MAC: locally administered, unicast, the same for a workspace across boots."""
    digest = hashlib.sha256(ws_id.encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x06, 0x00, *digest[:4]))


def guest_network_arg() -> str:
    """What the guest's init reads to configure eth0: `roost.net=ADDRESS/PREFIX,GATEWAY,NAMESERVER`."""
    return f"roost.net={SOURCE_ADDRESS}/{GUEST_PREFIX},{RESOLVER_ADDRESS},{RESOLVER_ADDRESS}"


def unshared_argv(vmm_argv: Sequence[str]) -> list[str]:
    """`vmm_argv` run in a new user and network namespace, after making the TAP there (same pid)."""
    script = ["sh", "-ec", _MAKE_TAP_THEN_EXEC, "roost-vmm", _tool("ip")]
    return [_tool("unshare"), "--user", "--map-root-user", "--net", "--", *script, *vmm_argv]


def in_own_namespace(pid: int) -> bool:
    """Whether process `pid` is in a network namespace other than ours (False when it is gone)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False


def named(ws_id: str) -> str:
    return NAMED_PREFIX + ws_id


def named_path(ws_id: str) -> str:
    """The named namespace's file, as the jailer's `--netns` takes it."""
    return f"{_NETNS_DIR}/{named(ws_id)}"


def make_named(ws_id: str, uid: int, gid: int) -> None:
    """A fresh named namespace for a jailed VMM, with a TAP the jail's uid may open.

    Raises:
        BackendError: jail_setup_failed.
    """
    remove_named(ws_id)
    ip, name = _tool("ip"), named(ws_id)
    steps = (
        [ip, "netns", "add", name],
        [ip, "-n", name, "tuntap", "add", "dev", GUEST_LINK, "mode", "tap", "user", str(uid), "group", str(gid)],
        [ip, "-n", name, "link", "set", GUEST_LINK, "up"],
    )
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            remove_named(ws_id)
            raise BackendError(
                f"cannot make the VM's network namespace: {result.stderr.strip() or result.returncode}",
                code="jail_setup_failed",
                hint="the jailer's VMM needs /dev/net/tun and `ip netns` (iproute2)",
            )


def remove_named(ws_id: str) -> None:
    """Remove a jailed VMM's named namespace (and its TAP with it); nothing to do when none is there."""
    if os.path.exists(named_path(ws_id)):
        subprocess.run([_tool("ip"), "netns", "del", named(ws_id)], capture_output=True, check=False)
