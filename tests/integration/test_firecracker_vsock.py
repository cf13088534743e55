"""The host side of the vsock path: `VsockConnector` against a relay that speaks Firecracker's
host-side handshake, in front of a real roost agent, so retries, deadlines and the agent
protocol all run for real."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from firecracker_fakes import VsockRelay, start_agent, unix_listener

from helpers import wait_until
from roost.backends.firecracker.vsock import VsockConnector
from roost.errors import AgentError, BackendError, ProtocolError
from roost.protocol import PROTOCOL_VERSIONS, Op
from roost.rpc import AgentClient

pytestmark = pytest.mark.integration

PORT = 1024


@pytest.fixture
def agent_socket(tmp_path: Path) -> Iterator[Path]:
    """A real agent listening on a Unix socket (what the guest's vsock port leads to)."""
    path = tmp_path / "agent.sock"
    proc = start_agent(tmp_path / "guest", path)
    try:
        wait_until(path.exists, timeout=10, what="the agent's socket")
        yield path
    finally:
        proc.kill()
        proc.wait()


def _exec(client: AgentClient, *argv: str) -> tuple[int, bytes]:
    reply = client.call(Op.EXEC, {"argv": list(argv)})
    return int(reply.result["exit_code"]), reply.streams.get("stdout", b"")


def test_the_connector_retries_until_the_guest_agent_accepts_then_runs_an_exec(
    tmp_path: Path, agent_socket: Path
) -> None:
    # Firecracker closes host connections while nothing listens on the guest port: the first three do.
    relay = VsockRelay(tmp_path / "v.sock", lambda: agent_socket, port=PORT, close_first=3)
    try:
        stream = VsockConnector(tmp_path / "v.sock", PORT).wait_for_agent(boot_timeout=10)
        with AgentClient(stream) as client:
            assert _exec(client, "echo", "through vsock") == (0, b"through vsock\n")
        assert relay.attempts == 4
        assert relay.handshakes == 1
    finally:
        relay.close()


def test_open_client_handshakes_with_a_running_agent(tmp_path: Path, agent_socket: Path) -> None:
    relay = VsockRelay(tmp_path / "v.sock", lambda: agent_socket, port=PORT)
    try:
        with VsockConnector(tmp_path / "v.sock", PORT).open_client(timeout=5) as client:
            assert client.hello["version"] == max(PROTOCOL_VERSIONS)
            assert _exec(client, "sh", "-c", "printf %s $((6 * 7))") == (0, b"42")
    finally:
        relay.close()


def test_a_relay_that_never_answers_connect_hits_the_boot_deadline_promptly(tmp_path: Path) -> None:
    relay = VsockRelay(tmp_path / "v.sock", lambda: None, silent=True)
    try:
        started = time.monotonic()
        with pytest.raises(BackendError) as caught:
            VsockConnector(tmp_path / "v.sock", PORT).wait_for_agent(boot_timeout=0.4)
        elapsed = time.monotonic() - started
        assert caught.value.code == "boot_timeout"
        assert f"vsock port {PORT}" in caught.value.message
        assert "no answer to CONNECT" in caught.value.message
        assert caught.value.hint
        assert 0.4 <= elapsed < 3.0
    finally:
        relay.close()


def test_a_missing_vsock_socket_makes_connect_agent_unreachable_at_its_deadline(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(AgentError) as caught:
        VsockConnector(tmp_path / "v.sock", PORT).connect(timeout=0.2)
    assert caught.value.code == "agent_unreachable"
    assert "No such file or directory" in caught.value.message
    assert time.monotonic() - started < 1.0


def test_a_socket_that_refuses_connections_is_retried_until_the_boot_deadline(tmp_path: Path) -> None:
    refusing = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    refusing.bind(str(tmp_path / "v.sock"))  # bound, never listening: connect() is refused
    try:
        with pytest.raises(BackendError) as caught:
            VsockConnector(tmp_path / "v.sock", PORT).wait_for_agent(boot_timeout=0.2)
        assert caught.value.code == "boot_timeout"
        assert "Connection refused" in caught.value.message
    finally:
        refusing.close()


def test_a_vmm_that_dies_while_booting_fails_the_wait_at_once_not_at_the_deadline(tmp_path: Path) -> None:
    checks: list[int] = []

    def probe() -> str | None:
        checks.append(1)
        return "the VMM died; its last output: Kernel panic" if len(checks) >= 2 else None

    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        VsockConnector(tmp_path / "v.sock", PORT, vmm_probe=probe).wait_for_agent(boot_timeout=30)
    assert caught.value.code == "vmm_died"
    assert "Kernel panic" in caught.value.message
    assert time.monotonic() - started < 2


def test_a_dead_vmm_makes_connect_agent_unreachable_with_the_reason(tmp_path: Path) -> None:
    connector = VsockConnector(tmp_path / "v.sock", PORT, vmm_probe=lambda: "the VMM died without output")
    with pytest.raises(AgentError) as caught:
        connector.connect(timeout=30)
    assert caught.value.code == "agent_unreachable"
    assert caught.value.message == "the VMM died without output"


def _one_shot_server(path: Path, reply: list[bytes]) -> threading.Thread:
    """Accept one connection, read the CONNECT line, send each of `reply` separately, then close."""
    listener = unix_listener(path)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            buffered = b""
            while not buffered.endswith(b"\n"):
                buffered += conn.recv(1)
            assert buffered == f"CONNECT {PORT}\n".encode()
            for part in reply:
                conn.sendall(part)
                time.sleep(0.01)  # separate segments, not a synchronisation
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _read_all(stream: object) -> bytes:
    received = bytearray()
    buffer = bytearray(4)  # smaller than what was buffered: the replay must span calls
    while True:
        count = stream.recv_into(memoryview(buffer))  # type: ignore[attr-defined]
        if count == 0:
            return bytes(received)
        received += buffer[:count]


def test_bytes_that_arrive_in_the_same_read_as_ok_are_not_lost(tmp_path: Path) -> None:
    server = _one_shot_server(tmp_path / "v.sock", [b"OK 1073741824\nhello, ", b"world"])
    stream = VsockConnector(tmp_path / "v.sock", PORT).connect(timeout=5)
    try:
        assert _read_all(stream) == b"hello, world"
    finally:
        stream.close()
    server.join(5)


def test_an_answer_other_than_ok_is_a_protocol_error(tmp_path: Path) -> None:
    server = _one_shot_server(tmp_path / "v.sock", [b"ERR no such port\n"])
    with pytest.raises(ProtocolError) as caught:
        VsockConnector(tmp_path / "v.sock", PORT).connect(timeout=5)
    assert "ERR no such port" in caught.value.message
    server.join(5)


def test_a_vsock_socket_path_longer_than_sockaddr_un_still_connects(tmp_path: Path, agent_socket: Path) -> None:
    deep = tmp_path / ("v" * 60) / ("w" * 60)
    deep.mkdir(parents=True)
    relay = VsockRelay(deep / "v.sock", lambda: agent_socket, port=PORT)
    try:
        assert len(str(deep / "v.sock")) > 108
        with VsockConnector(deep / "v.sock", PORT).open_client(timeout=5) as client:
            assert _exec(client, "true") == (0, b"")
    finally:
        relay.close()


def test_killing_the_agent_mid_exec_is_agent_disconnected(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    proc: subprocess.Popen[bytes] = start_agent(tmp_path / "guest", path)
    relay = VsockRelay(tmp_path / "v.sock", lambda: path, port=PORT)
    try:
        client = VsockConnector(tmp_path / "v.sock", PORT).open_client(timeout=10)
        errors: list[BaseException] = []
        started = threading.Event()

        def run() -> None:
            try:
                client.call(Op.EXEC, {"argv": ["sleep", "30"]}, on_start=lambda _rid: started.set())
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        assert started.wait(5)
        proc.kill()
        worker.join(5)
        assert not worker.is_alive()
        [error] = errors
        assert isinstance(error, AgentError)
        assert error.code == "agent_disconnected"
        client.close()
    finally:
        relay.close()
        proc.kill()
        proc.wait()
