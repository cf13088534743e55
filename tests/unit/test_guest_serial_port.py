"""The agent's serial listener (`--listen serial:...`): sessions over a port held open for the agent's life.

A socketpair stands in for the virtio-serial port: it has the same "one byte stream, no
accept" shape; a closed peer reads as end-of-stream with POLLHUP, like a port whose host
end went away.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import agent_info
from roost.agent.server.listen import ListenError, serve
from roost.agent.server.serial_port import PortStream, wait_for_host
from roost.agent.state import AgentState
from roost.rpc import AgentClient

DEADLINE = 10.0


@dataclass
class SerialAgent:
    agent: AgentState
    host: socket.socket
    port_fd: int
    thread: threading.Thread
    errors: list[BaseException]


@pytest.fixture
def serial_agent(tmp_path: Path) -> Iterator[SerialAgent]:
    (tmp_path / "ws").mkdir()
    state = AgentState(WorkspacePaths(str(tmp_path / "ws")), str(tmp_path / "state"), str(tmp_path / "scratch"))
    guest_end, host_end = socket.socketpair()
    host_end.settimeout(DEADLINE)
    port_fd = guest_end.detach()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve(f"serial:fd:{port_fd}", OpTable(state), agent_info())
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, name="serial-agent", daemon=True)
    thread.start()
    agent = SerialAgent(state, host_end, port_fd, thread, errors)
    try:
        yield agent
    finally:
        state.shutdown.set()
        thread.join(DEADLINE)
        host_end.close()
        try:
            os.close(port_fd)
        except OSError:
            pass


def test_a_host_session_runs_calls_and_shutdown_ends_the_listener(serial_agent: SerialAgent) -> None:
    client = AgentClient(serial_agent.host)
    assert client.call("ping").result["pong"] is True
    assert client.call("shutdown").result == {"stopping": True, "services_stopped": [], "shells_closed": []}
    serial_agent.thread.join(DEADLINE)
    assert not serial_agent.thread.is_alive()
    assert serial_agent.errors == []
    os.fstat(serial_agent.port_fd)  # the port itself was never closed


def test_the_listener_outlives_a_host_that_goes_away(serial_agent: SerialAgent) -> None:
    client = AgentClient(serial_agent.host)
    assert client.call("ping").result["pong"] is True
    client.close()
    # The session has ended; the agent waits for the next host rather than exiting.
    assert not serial_agent.agent.shutdown.wait(0.3)
    assert serial_agent.thread.is_alive()
    serial_agent.agent.shutdown.set()
    serial_agent.thread.join(DEADLINE)
    assert not serial_agent.thread.is_alive()


def test_waiting_for_a_host_sees_a_connected_peer_and_gives_up_on_stop() -> None:
    left, right = socket.socketpair()
    stop = threading.Event()
    try:
        assert wait_for_host(left.fileno(), stop, poll_ms=20) is True
        right.close()  # HUP from now on: nobody is there
        results: list[bool] = []
        waiter = threading.Thread(target=lambda: results.append(wait_for_host(left.fileno(), stop, poll_ms=20)))
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive(), "a port with nobody on the host end was taken for a connection"
        stop.set()
        waiter.join(DEADLINE)
        assert results == [False]
    finally:
        left.close()
        right.close()


def test_ending_a_session_leaves_the_port_open() -> None:
    left, right = socket.socketpair()
    right.settimeout(DEADLINE)
    try:
        PortStream(left.fileno()).close()
        os.write(left.fileno(), b"still open")  # raises EBADF had the session closed the port
        assert right.recv(64) == b"still open"
    finally:
        left.close()
        right.close()


def test_a_port_that_cannot_be_opened_is_a_listen_error(tmp_path: Path) -> None:
    state = AgentState(WorkspacePaths(str(tmp_path)), str(tmp_path / "state"), str(tmp_path / "scratch"))
    with pytest.raises(ListenError, match="cannot open the serial port"):
        serve(f"serial:{tmp_path / 'no-such-port'}", OpTable(state), agent_info())
