"""`python -m benchmarks [--only NAME,...] [--quick] [--output FILE] [--strict]`.

Runs every benchmark in turn, prints ONE JSON document on stdout (progress
goes to stderr) and writes the same document to `--output`. A benchmark that
fails is recorded with its error and the rest still run. Exit status is 0
unless `--strict` is given and a target was missed or a benchmark failed.
A benchmark that cannot run here (a missing tool, `--quick`) is recorded as
skipped, with the reason, and counts as neither met nor missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    agent_rss,
    changes,
    cli_latency,
    custom_envs,
    firecracker,
    fork,
    guest_image,
    ignore_rules,
    image_build,
    image_reference,
    mcp_exec,
    network,
    network_workspace,
    sandbox,
    scale,
    sdk_exec,
    services,
    shells,
    throughput,
    ui,
)
from benchmarks._harness import BACKEND, Result, Settings, failed, log, use_scratch_root

BENCHMARKS: dict[str, tuple[str, Callable[[Settings], Result]]] = {
    "sdk_exec_round_trip": (sdk_exec.DESCRIPTION, sdk_exec.run),
    "cli_version_wall_time": ("`roost --version` process wall time", cli_latency.version),
    "cli_workspace_exec_wall_time": ("`roost workspace exec WS -- true` wall time", cli_latency.workspace_exec),
    "mcp_workspace_exec_round_trip": (mcp_exec.DESCRIPTION, mcp_exec.run),
    "exec_output_throughput": (throughput.DESCRIPTION, throughput.run),
    "agent_idle_rss": (agent_rss.DESCRIPTION, agent_rss.run),
    "sandbox_create": (sandbox.CREATE_DESCRIPTION, sandbox.create),
    "sandbox_delete": (sandbox.DELETE_DESCRIPTION, sandbox.delete),
    "sandbox_exec_round_trip": (sandbox.EXEC_DESCRIPTION, sandbox.exec_round_trip),
    "sandbox_create_with_egress": (network_workspace.CREATE_DESCRIPTION, network_workspace.create),
    "sandbox_exec_round_trip_with_egress": (network_workspace.EXEC_DESCRIPTION, network_workspace.exec_round_trip),
    "image_build_debian_12_base": (image_build.DESCRIPTION, image_build.run),
    "image_reference_cached_digest": (image_reference.DESCRIPTION, image_reference.run),
    "guest_image_debian_12": (guest_image.DESCRIPTION, guest_image.run),
    "firecracker_launch_to_configured": (firecracker.CONFIGURE_DESCRIPTION, firecracker.launch_to_configured),
    "firecracker_create_to_first_exec_cold": (firecracker.COLD_DESCRIPTION, firecracker.create_to_first_exec_cold),
    "firecracker_create_to_first_exec_from_snapshot": (
        firecracker.SNAPSHOT_DESCRIPTION,
        firecracker.create_to_first_exec_from_snapshot,
    ),
    **services.benchmarks(),
    **shells.benchmarks(),
    **changes.benchmarks(),
    **ignore_rules.benchmarks(),
    **scale.benchmarks(),
    **fork.benchmarks(),
    **network.benchmarks(),
    **custom_envs.benchmarks(),
    **ui.benchmarks(),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="roost benchmarks (JSON on stdout)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke run, not a measurement")
    parser.add_argument("--output", type=Path, help="also write the JSON document here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed or a benchmark fails")
    return parser.parse_args(argv)


def _environment(scratch: dict[str, str]) -> dict[str, object]:
    try:
        from roost import __version__ as roost_version
    except Exception as exc:
        roost_version = f"unavailable ({exc})"
    return {
        "roost_version": roost_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "backend": BACKEND,
        **scratch,
    }


def _verdict(result: Result) -> str:
    if "error" in result:
        return f"error: {result['error']}"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    return "met" if result["met"] else "MISSED"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in selected if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    settings = Settings(quick=args.quick)
    scratch = use_scratch_root()
    started = time.perf_counter()
    results: dict[str, Result] = {}
    for name in selected:
        description, bench = BENCHMARKS[name]
        log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            result = bench(settings)
        except Exception as exc:  # record and go on: one broken piece must not hide the others
            result = failed(description, exc)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        results[name] = result
        log(f"{name}: {_verdict(result)}")
    met = sum(1 for r in results.values() if r.get("met"))
    skipped = sum(1 for r in results.values() if "skipped" in r)
    document = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": settings.quick,
        "environment": _environment(scratch),
        "benchmarks": results,
        "summary": {
            "total": len(results),
            "met": met,
            "missed": sum(1 for r in results.values() if not r.get("met") and "error" not in r and "skipped" not in r),
            "errors": sum(1 for r in results.values() if "error" in r),
            "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 2),
        },
    }
    text = json.dumps(document, indent=2)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(text)
    if args.strict and met + skipped != len(results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
