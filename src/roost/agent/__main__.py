"""Entry point: ``python3 -m roost.agent --listen unix:PATH|vsock:PORT|fd:N``.

Imports: the agent's own modules and the standard library only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from roost.agent.listen import ListenError, serve
from roost.agent.ops import AgentRuntime, OpTable
from roost.agent.paths import WorkspacePaths
from roost.agent.server import agent_info

# Environment variables meant for the agent itself, not for commands it runs.
_PRIVATE_ENV_PREFIX = "ROOST_AGENT_"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="roost-agent", description="roost guest agent")
    parser.add_argument("--listen", required=True, help="unix:PATH, vsock:PORT or fd:N")
    parser.add_argument("--workspace-root", default="/workspace", help="directory seen as /workspace")
    parser.add_argument("--state-dir", default="/var/lib/roost-agent", help="agent records (outside the workspace)")
    parser.add_argument(
        "--scratch-dir",
        default=None,
        help="staging area on the workspace's own mount (default: WORKSPACE/.roost-staging)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s agent %(levelname)s %(message)s")
    root = os.path.abspath(args.workspace_root)
    os.makedirs(root, exist_ok=True)
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    scratch = args.scratch_dir or os.path.join(root, ".roost-staging")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV_PREFIX)}
    base_env["ROOST_WORKSPACE"] = root
    runtime = AgentRuntime(WorkspacePaths(root), args.state_dir, scratch, base_env)
    ops = OpTable(runtime)
    signal.signal(signal.SIGTERM, lambda *_: runtime.shutdown.set())
    signal.signal(signal.SIGINT, lambda *_: runtime.shutdown.set())
    try:
        serve(args.listen, ops, agent_info())
    except ListenError as exc:
        print(f"roost-agent: {exc}", file=sys.stderr)
        return 2
    finally:
        runtime.shutdown.set()
        runtime.inflight.cancel_all()
        runtime.inflight.wait_idle(2.0)
        runtime.stop_children()
    return 0


if __name__ == "__main__":
    sys.exit(main())
