"""roost's guest init configuring eth0 for real: its ioctls run in a network namespace of the test's own
(user-owned, with a veth link named eth0), as they run in a microVM with its virtio-net device."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import sys
from roost.guest.network import configure_interface, parse_network, write_resolv_conf
network = parse_network(sys.argv[1])
configure_interface(network)
write_resolv_conf(network, sys.argv[2])
"""


def _in_namespace(shell: str) -> str:
    argv = ["unshare", "--user", "--map-root-user", "--net", "sh", "-ec", shell]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "Operation not permitted" in result.stderr and "unshare" in result.stderr:
        pytest.skip(f"no user namespaces here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_guest_network_gets_its_address_default_route_and_resolver(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.symlink_to(tmp_path / "elsewhere")  # replaced, not followed
    value = "100.96.0.2/30,100.96.0.1,100.96.0.1"
    out = _in_namespace(
        f"ip link add eth0 type veth peer name peer0; ip link set peer0 up; {sys.executable} -c '{SCRIPT}' {value} {resolv}; "
        "ip -4 -o addr show dev eth0; ip -4 route show; ip -o link show eth0"
    )
    assert "inet 100.96.0.2/30" in out
    assert "default via 100.96.0.1 dev eth0" in out
    assert ",UP" in out or "<UP" in out
    assert not resolv.is_symlink() and not (tmp_path / "elsewhere").exists()
    assert resolv.read_text().splitlines()[-1] == "nameserver 100.96.0.1"


def test_a_missing_interface_is_an_error_init_reports(tmp_path: Path) -> None:
    out = _in_namespace(
        f"{sys.executable} -c 'from roost.guest.network import configure_interface, parse_network as p\n"
        'try:\n configure_interface(p("100.96.0.2/30,100.96.0.1,100.96.0.1"))\n'
        "except OSError as e: print(e)'"
    )
    assert out.strip() == "no network interface eth0"
