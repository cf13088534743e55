"""Entry point: ``python3 -m roost.agent --listen unix:PATH|socket-fd:N|vsock:PORT|fd:N``.

Imports: the server, the op table, the agent state, the agent's `fs` layer, protocol and the standard library only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import agent_info
from roost.agent.server.fd_stream import ListenError
from roost.agent.server.listen import serve
from roost.agent.state import AgentState
from roost.protocol.identity import KEY_BYTES, AgentIdentity

# Environment variables meant for the agent itself, not for commands it runs.
_PRIVATE_ENV_PREFIX = "ROOST_AGENT_"
KEY_ENV = f"{_PRIVATE_ENV_PREFIX}KEY"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="roost-agent", description="roost guest agent")
    parser.add_argument("--listen", required=True, help="unix:PATH, socket-fd:N, vsock:PORT or fd:N")
    parser.add_argument("--workspace-id", default=None, help="the workspace this agent serves (with --key-fd)")
    parser.add_argument(
        "--key-fd", type=int, default=None, help="descriptor to read the workspace's identity key from, once"
    )
    parser.add_argument("--workspace-root", default="/workspace", help="directory seen as /workspace")
    parser.add_argument("--state-dir", default="/var/lib/roost-agent", help="agent records (outside the workspace)")
    parser.add_argument(
        "--scratch-dir",
        default=None,
        help="staging area on the workspace's own mount (default: WORKSPACE/.roost-staging)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def _identity(args: argparse.Namespace) -> AgentIdentity | None:
    """The identity the host gave us: the key from a descriptor (read once, then closed)
    or, from a microVM's init, in hex in $ROOST_AGENT_KEY (never passed on to commands)."""
    if not args.workspace_id:
        return None
    if args.key_fd is None:
        try:
            key = bytes.fromhex(os.environ.get(KEY_ENV, ""))
        except ValueError:
            raise ListenError(f"${KEY_ENV} is not hex") from None
        return AgentIdentity(args.workspace_id, key) if len(key) >= KEY_BYTES else None
    try:
        with os.fdopen(args.key_fd, "rb") as source:
            key = source.read(KEY_BYTES * 2)
    except OSError as exc:
        raise ListenError(f"cannot read the identity key from fd {args.key_fd}: {exc.strerror}") from None
    if len(key) < KEY_BYTES:
        raise ListenError(f"the identity key on fd {args.key_fd} is too short")
    return AgentIdentity(args.workspace_id, key)


LISTENING = "roost-agent: listening on "


def _say_listening(listen: str) -> None:
    """One line on stderr (a microVM's console) once the listener is bound: the agent can be reached."""
    print(f"{LISTENING}{listen}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        identity = _identity(args)
    except ListenError as exc:
        print(f"roost-agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s agent %(levelname)s %(message)s")
    root = os.path.abspath(args.workspace_root)
    os.makedirs(root, exist_ok=True)
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    scratch = args.scratch_dir or os.path.join(root, ".roost-staging")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV_PREFIX)}
    base_env["ROOST_WORKSPACE"] = root
    agent = AgentState(WorkspacePaths(root), args.state_dir, scratch, base_env, identity)
    ops = OpTable(agent)
    signal.signal(signal.SIGTERM, lambda *_: agent.shutdown.set())
    signal.signal(signal.SIGINT, lambda *_: agent.shutdown.set())
    try:
        serve(args.listen, ops, agent_info(), on_ready=lambda: _say_listening(args.listen))
    except ListenError as exc:
        print(f"roost-agent: {exc}", file=sys.stderr)
        return 2
    finally:
        agent.shutdown.set()
        agent.inflight.cancel_all()
        agent.inflight.wait_idle(2.0)
        agent.stop_children()
    return 0


if __name__ == "__main__":
    sys.exit(main())
