"""`roost workspace network show|set|log`, and how a workspace's network reads in text.

Imports: cli siblings, client, models and the standard library.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, shown, table
from roost.models import NetworkDecision, NetworkInfo, PortInfo


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


def network_set(args: argparse.Namespace) -> int:
    publish = [] if args.no_publish else args.publish
    network = (
        sdk(args).workspace(args.workspace).network.set(args.network_policy, allow=args.allow_host, publish=publish)
    )
    if args.json:
        emit_json(network.to_dict())
    else:
        print("\n".join(network_lines(network)))
    return 0


def _row(decision: NetworkDecision) -> list[str]:
    """A decision as a table row: a lookup names the name; a connection its address, name and port."""
    if decision.protocol == "dns" or not decision.address:
        where = decision.name or "?"
    else:
        named = f"{decision.name} ({decision.address})" if decision.name else decision.address
        where = f"{named}:{decision.port}"
    return [
        decision.time[:19].replace("T", " "),
        decision.verdict,
        decision.protocol,
        shown(where),
        shown(decision.reason if decision.secret is None else f"{decision.reason} (secret {decision.secret})"),
    ]


def network_log(args: argparse.Namespace) -> int:
    network = sdk(args).workspace(args.workspace).network
    if args.follow:
        return _follow(network.follow, args)
    found = network.log(denied=args.denied, limit=args.limit)
    if args.json:
        emit_json({"decisions": [d.to_dict() for d in found]})
    elif not found:
        print("nothing refused yet" if args.denied else "no decisions yet")
    else:
        print(table([_row(d) for d in found], ["TIME", "VERDICT", "PROTO", "DESTINATION", "REASON"]))
    return 0


def _follow(follow: Callable[..., None], args: argparse.Namespace) -> int:
    """Print each decision as it comes (one JSON document per line with --json) until Ctrl-C."""

    def show(decision: NetworkDecision) -> None:
        line = json.dumps(decision.to_dict(), sort_keys=True) if args.json else "  ".join(_row(decision))
        print(line, flush=True)

    stop = threading.Event()
    try:
        follow(show, stop, denied=args.denied)
    except KeyboardInterrupt:
        stop.set()
    return 0
