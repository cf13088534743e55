"""Workspace networking: the policy a workspace's traffic is held to, and the host-side gateway that holds it.

A workspace's network namespace has no way out but sockets that roost's
gateway (a host-side process per workspace) holds: the gateway answers the
workspace's DNS, decides every connection against the `NetworkPolicy` and
makes the outbound connection itself, and serves published ports on the
host's loopback. `policy` (what may be reached) and `presets` (named host
lists) are plain values shared by the front ends and the gateway.

This package imports only roost.errors and the standard library (and, for
the gateway's DNS, dnslib); nothing above it (workspace, SDK, faces).
"""
