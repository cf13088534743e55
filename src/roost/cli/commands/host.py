"""`roost doctor` and `roost mcp serve`.

Imports: cli siblings, client, images.catalog, mcp (lazily) and the standard library.
"""

from __future__ import annotations

import argparse

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, shown


def doctor(args: argparse.Namespace) -> int:
    report = sdk(args).doctor()
    if args.json:
        emit_json(report.to_dict())
        return 0
    print(f"roost {report.version}")
    print(f"state directory: {report.home}")
    print(f"default backend: {report.default_backend}")
    print("backends:")
    for name, check in report.backends.items():
        print(f"  {'ok ' if check.ok else 'no '} {name:<12} {shown(check.detail)}")
    print("checks:")
    for check in report.checks:
        print(f"  {'ok ' if check.ok else 'no '} {check.name:<12} {shown(check.detail)}")
    for name, protections in report.protections.items():
        print(f"protections of a new {name} workspace:")
        for protection in protections:
            print(f"  {'on ' if protection.active else 'OFF'} {protection.name:<15} {shown(protection.detail)}")
    return 0


def mcp_serve(args: argparse.Namespace) -> int:
    from roost.mcp.server import ServeOptions, serve

    serve(
        ServeOptions(
            profile=args.profile,
            transport=args.transport,
            host=args.host,
            port=args.port,
            allow_roots=tuple(args.allow_root),
            home=args.home,
            backend=args.backend,
            token_file=args.token_file,
        )
    )
    return 0
