"""The agent's op table: every protocol op routed to the module that registers it, loaded on first use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from roost.agent.ops import ROUTES
from roost.protocol import Op

IO_TIMEOUT = 20.0


def test_every_op_of_the_protocol_is_routed() -> None:
    protocol_ops = {value for name, value in vars(Op).items() if name.isupper()}
    assert set(ROUTES) == protocol_ops


def test_each_loader_serves_exactly_the_ops_routed_to_it_with_their_messages() -> None:
    for load in set(ROUTES.values()):
        routed = {op for op, loader in ROUTES.items() if loader is load}
        route = load()
        assert set(route.handlers) == routed, load.__name__
        assert routed <= set(route.messages), load.__name__


def test_handler_modules_and_their_messages_load_on_their_first_op_and_not_before(tmp_path: Path) -> None:
    # A fresh interpreter: this one has every module loaded already.
    probe = textwrap.dedent(
        """
        import json, sys, threading
        from roost.agent.context import RequestContext
        from roost.agent.fs.paths import WorkspacePaths
        from roost.agent.ops import OpTable
        from roost.agent.state import AgentState
        import roost.agent.__main__, roost.agent.server.listen

        root, state = sys.argv[1], sys.argv[2]
        table = OpTable(AgentState(WorkspacePaths(root), state, state + "/scratch"))
        watched = ("roost.agent.execs.handlers", "roost.agent.files.handlers", "roost.agent.files.archive",
                   "roost.agent.shells.handlers", "roost.agent.services.handlers", "roost.agent.snapshots.handlers",
                   "tarfile", "roost.protocol.ops.files", "roost.protocol.ops.shells",
                   "roost.protocol.ops.snapshots", "roost.protocol.ops.table")
        def loaded():
            return sorted(name for name in watched if name in sys.modules)
        def call(op, args):
            table.call(RequestContext(1, op, args, b"", lambda channel, data: None, None, threading.Event()))
        seen = {"started": loaded()}
        call("ping", {})
        seen["ping"] = loaded()
        call("file.stat", {"path": "/workspace"})
        seen["file.stat"] = loaded()
        print(json.dumps(seen))
        """
    )
    seen = _probe(probe, tmp_path)
    assert seen == {
        "started": [],
        "ping": [],
        "file.stat": ["roost.agent.files.handlers", "roost.protocol.ops.files"],
    }


def test_an_agent_starts_without_message_classes_and_warms_up_the_baseline_snapshot_after_hello(
    tmp_path: Path,
) -> None:
    # A fresh interpreter: the first request after HELLO (a create's baseline) finds its family loaded.
    probe = textwrap.dedent(
        """
        import json, sys, time
        from roost.agent.fs.paths import WorkspacePaths
        from roost.agent.ops import OpTable
        from roost.agent.state import AgentState
        import roost.agent.__main__, roost.agent.server.listen

        started = sorted(name for name in sys.modules if name.startswith("roost.protocol.ops"))
        root, state = sys.argv[1], sys.argv[2]
        table = OpTable(AgentState(WorkspacePaths(root), state, state + "/scratch"))
        table.warm_up()
        table.warm_up()  # once is enough: a second call starts nothing
        deadline = time.monotonic() + 10
        while "roost.agent.snapshots.handlers" not in sys.modules and time.monotonic() < deadline:
            time.sleep(0.01)
        print(json.dumps({"started": started, "warm": "roost.agent.snapshots.handlers" in sys.modules}))
        """
    )
    assert _probe(probe, tmp_path) == {"started": [], "warm": True}


def _probe(script: str, tmp_path: Path) -> Any:
    """What `script` prints (JSON), run in a fresh interpreter with a workspace and a state dir as arguments."""
    (tmp_path / "ws").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ws"), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT,
        check=True,
    )
    return json.loads(done.stdout)
