"""Workspace networking: the policy a workspace's traffic is held to, and the host-side gateway that holds it.

A workspace's network namespace has no way out but sockets that roost's
gateway (a host-side process per workspace) holds: the gateway answers the
workspace's DNS, decides every connection against the `NetworkPolicy` and
makes the outbound connection itself, and serves published ports on the
host's loopback.

- `policy`, `presets`: what may be reached (plain values, shared by the faces and the gateway);
- `attachment`: the calls the workspace layer makes (attach, update, detach, read_decisions);
- `substitution` (`Substitution`: a proxy-mode secret), `authority` (the
  workspace's CA), `intercept` and `rewrite`: proxy secrets put in place
  of their placeholders on the way out;
- `gateway`: the gateway process; `inner`: the helper that bars the
  workspace's namespace and makes sockets inside it;
- `decisions` (pure verdicts), `sniff` (TLS SNI / HTTP Host), `resolver`
  (DNS), `flows` (TCP and UDP), `published` (ports), `relay` (splice),
  `decision_log`, `control`, `accepting`: the gateway's parts.

This package imports only roost.errors, roost.store.atomic, the standard
library, dnslib and cryptography; nothing above it (workspace, SDK, faces).
"""

from roost.network.substitution import Substitution

__all__ = ["Substitution"]
