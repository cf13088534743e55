"""`roost workspace network show|set|log`, and how a workspace's network reads in text.

Imports: cli siblings, client, models and the standard library.
"""

from __future__ import annotations

import argparse

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, shown
from roost.models import NetworkInfo, PortInfo


def port_text(port: PortInfo) -> str:
    """`127.0.0.1:18000 -> 8000`, with the service that published it."""
    host = f"{port.host_address}:{port.host_port or 'any'}"
    owner = f" (service {port.service})" if port.service else ""
    return shown(f"{host} -> {port.guest_port}{owner}")


def network_lines(network: NetworkInfo) -> list[str]:
    """The `network` part of `workspace status`, and all of `workspace network show`."""
    state = "enforced" if network.enforced else "not enforced"
    lines = [f"network  {network.policy} ({state}: {shown(network.detail)})"]
    if network.policy == "allowlist":
        lines.append(f"  allow  {shown(', '.join(network.allow)) or 'nothing'}")
    lines += [f"  port   {port_text(port)}" for port in network.ports]
    return lines


def network_show(args: argparse.Namespace) -> int:
    network = sdk(args).workspace(args.workspace).network.show()
    if args.json:
        emit_json(network.to_dict())
    else:
        print("\n".join(network_lines(network)))
    return 0
