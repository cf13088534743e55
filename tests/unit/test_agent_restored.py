"""A machine resumed from a template's memory snapshot becomes a new one before it serves anything:
the agent credits fresh entropy, sets the clock, hostname and machine-id, then proves the new
workspace's identity instead of the template's; a step that fails leaves it answering as the
template, so the host discards the clone."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection, agent_info
from roost.agent.state import AgentState
from roost.agent.system.machine import OsMachine
from roost.errors import AgentError
from roost.protocol import OpError
from roost.protocol.identity import AgentIdentity, new_key
from roost.protocol.ops.agent import RestoredArgs
from roost.rpc import AgentClient

TEMPLATE = AgentIdentity("tpl-debian-12", new_key())


class RecordingMachine(OsMachine):
    """The machine calls, recorded instead of made (they need root in a guest); `fail` names one to refuse."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail = fail

    def _record(self, name: str, value: object) -> None:
        if name == self.fail:
            raise PermissionError(1, "Operation not permitted")
        self.calls.append((name, value))

    def add_entropy(self, data: bytes) -> int:
        self._record("entropy", data)
        return len(data) * 8

    def set_clock(self, unix_time_ns: int) -> None:
        self._record("clock", unix_time_ns)

    def set_hostname(self, name: str) -> None:
        self._record("hostname", name)

    def set_machine_id(self, machine_id: str, path: str = "") -> None:
        self._record("machine_id", machine_id)


Serve = Callable[[RecordingMachine], Callable[[AgentIdentity], AgentClient]]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """serve(machine) -> connect(identity): an in-process agent that booted as the template."""
    opened: list[socket.socket] = []

    def start(machine: RecordingMachine) -> Callable[[AgentIdentity], AgentClient]:
        (tmp_path / "ws").mkdir(exist_ok=True)
        agent = AgentState(WorkspacePaths(str(tmp_path / "ws")), str(tmp_path / "state"), str(tmp_path), {}, TEMPLATE)
        agent.machine = machine
        table = OpTable(agent)

        def connect(identity: AgentIdentity) -> AgentClient:
            server, client = socket.socketpair()
            client.settimeout(10)
            opened.extend((server, client))
            threading.Thread(target=Connection(server, table, agent_info()).serve, daemon=True).start()
            return AgentClient(client, identity=identity)

        return connect

    yield start
    for sock in opened:
        sock.close()


def _args(workspace: AgentIdentity, **overrides: object) -> RestoredArgs:
    fields: dict[str, object] = {
        "workspace_id": workspace.workspace_id,
        "key_hex": workspace.key.hex(),
        "entropy_hex": secrets.token_bytes(64).hex(),
        "unix_time_ns": time.time_ns(),
        "hostname": workspace.workspace_id,
        "machine_id": secrets.token_hex(16),
    }
    fields.update(overrides)
    return RestoredArgs(**fields)  # type: ignore[arg-type]


def test_a_restored_agent_renews_the_machine_then_proves_the_new_workspace_only(serve: Serve) -> None:
    machine = RecordingMachine()
    connect = serve(machine)
    workspace = AgentIdentity("ws-0123456789", new_key())
    args = _args(workspace)

    with connect(TEMPLATE) as client:
        result = client.call(args.OP, args.to_wire()).result
    assert result == {
        "entropy_bits": 512,
        "hostname": "ws-0123456789",
        "machine_id": args.machine_id,
        "workspace_id": "ws-0123456789",
    }
    assert [name for name, _ in machine.calls] == ["entropy", "clock", "hostname", "machine_id"]
    assert machine.calls[0][1] == bytes.fromhex(args.entropy_hex)

    with connect(workspace) as client:  # the new workspace's key proves it now...
        assert client.call("ping").result is not None
    with pytest.raises(AgentError) as caught:  # ...and the template's no longer does
        connect(TEMPLATE)
    assert caught.value.code == "agent_identity_mismatch"


@pytest.mark.parametrize("step", ["entropy", "clock", "hostname", "machine_id"])
def test_a_step_that_fails_is_restore_failed_and_the_agent_still_answers_as_the_template(
    serve: Serve, step: str
) -> None:
    connect = serve(RecordingMachine(fail=step))
    args = _args(AgentIdentity("ws-0123456789", new_key()))
    with connect(TEMPLATE) as client, pytest.raises(AgentError) as caught:
        client.call(args.OP, args.to_wire())
    assert caught.value.code == "restore_failed"
    assert "Operation not permitted" in caught.value.message
    with connect(TEMPLATE) as client:
        assert client.call("ping").result is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("entropy_hex", "ab" * 8),  # too little
        ("entropy_hex", "zz" * 64),  # not hex
        ("machine_id", "not-an-id"),
        ("hostname", "bad name; reboot"),
        ("hostname", "h" * 64),
        ("key_hex", ""),
        ("unix_time_ns", -1),
    ],
)
def test_arguments_that_would_not_make_a_sound_machine_are_invalid(field: str, value: object) -> None:
    with pytest.raises(OpError) as caught:
        _args(AgentIdentity("ws-0123456789", new_key()), **{field: value})
    assert caught.value.code == "invalid_argument"


def test_the_secrets_of_a_restore_never_show_in_its_repr() -> None:
    args = _args(AgentIdentity("ws-0123456789", new_key()))
    shown = repr(args)
    assert args.key_hex not in shown and args.entropy_hex not in shown
