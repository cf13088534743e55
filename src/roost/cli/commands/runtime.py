"""`roost runtime install`: Firecracker's official release, verified, into `<home>/runtime`.

Imports: cli siblings and the standard library.
"""

from __future__ import annotations

import argparse

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json


def runtime_install(args: argparse.Namespace) -> int:
    installed = sdk(args).install_runtime(args.runtime_version)
    if args.json:
        emit_json(installed.to_dict())
        return 0
    print(f"installed firecracker v{installed.version}: {installed.firecracker}")
    print(f"sha256 {installed.sha256}")
    if installed.jailer:
        print(f"jailer: {installed.jailer}")
    return 0
