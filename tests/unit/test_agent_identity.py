"""The handshake proves which workspace an agent serves: the host sends a nonce, the agent
answers with its workspace id and an HMAC under the workspace's key, and the host refuses
any agent that cannot (another workspace's, one without a key, a replay)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection, agent_info
from roost.agent.state import AgentState
from roost.errors import AgentError
from roost.protocol import PROTOCOL_VERSIONS, Kind, read_frame, write_frame
from roost.protocol.identity import AgentIdentity, new_key
from roost.rpc import AgentClient

KEY = new_key()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """serve(identity) -> a client-side socket connected to an in-process agent holding `identity`."""
    opened: list[socket.socket] = []

    def start(identity: AgentIdentity | None) -> socket.socket:
        (tmp_path / "ws").mkdir(exist_ok=True)
        agent = AgentState(WorkspacePaths(str(tmp_path / "ws")), str(tmp_path / "state"), str(tmp_path), {}, identity)
        server, client = socket.socketpair()
        client.settimeout(10)
        opened.extend((server, client))
        threading.Thread(target=Connection(server, OpTable(agent), agent_info()).serve, daemon=True).start()
        return client

    yield start
    for sock in opened:
        sock.close()


def test_the_agent_of_the_workspace_proves_it(serve) -> None:  # type: ignore[no-untyped-def]
    client = AgentClient(serve(AgentIdentity("ws-aaaa", KEY)), identity=AgentIdentity("ws-aaaa", KEY))
    assert client.hello["workspace_id"] == "ws-aaaa"
    assert client.call("ping").result is not None
    client.close()


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (AgentIdentity("ws-bbbb", KEY), "serves workspace 'ws-bbbb'"),
        (AgentIdentity("ws-aaaa", new_key()), "proof of identity is wrong"),
        (None, "offered no proof"),
    ],
    ids=["another-workspace", "another-key", "no-key"],
)
def test_an_agent_that_cannot_prove_the_workspace_is_refused(serve, agent: AgentIdentity | None, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AgentError) as caught:
        AgentClient(serve(agent), identity=AgentIdentity("ws-aaaa", KEY))
    assert caught.value.code == "agent_identity_mismatch"
    assert reason in caught.value.message


def test_a_proof_is_bound_to_the_nonce_it_answers() -> None:
    identity = AgentIdentity("ws-aaaa", KEY)
    proof = identity.prove("nonce-1")
    assert identity.check("nonce-1", {"workspace_id": "ws-aaaa", "proof": proof}) is None
    assert identity.check("nonce-2", {"workspace_id": "ws-aaaa", "proof": proof}) == "its proof of identity is wrong"


def test_the_key_never_crosses_the_wire(serve) -> None:  # type: ignore[no-untyped-def]
    sock = serve(AgentIdentity("ws-aaaa", KEY))
    write_frame(sock.sendall, Kind.HELLO, {"versions": list(PROTOCOL_VERSIONS), "client": "test", "nonce": "n"})
    frame = read_frame(sock.recv_into)
    assert frame is not None and frame.kind is Kind.HELLO
    raw = repr(frame.header).encode()
    assert KEY.hex().encode() not in raw and KEY not in raw
