"""The guest agent end to end: an in-process `Connection` over a socketpair, and the real process.

In-process tests talk to the agent with the real `AgentClient` (or raw
frames where the client would refuse to send what the test needs), so the
wire, the dispatcher and the handlers are exercised together.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import listed, pid_alive, read_pids, wait_until
from roost.agent.context import RequestContext
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import AGENT_VERSION, Connection, agent_info
from roost.agent.state import AgentState
from roost.errors import AgentError, RoostError
from roost.protocol import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    PROTOCOL_VERSIONS,
    Frame,
    Kind,
    OpError,
    read_frame,
    write_frame,
)
from roost.protocol.ops import OpMessages
from roost.protocol.ops.agent import PingArgs, PingResult
from roost.rpc import AgentClient, connect_unix

IO_TIMEOUT = 10.0


@dataclass
class InProcessAgent:
    root: Path
    agent: AgentState
    server_sock: socket.socket
    client_sock: socket.socket
    thread: threading.Thread


def _start_agent(tmp_path: Path, scratch: Path | None = None) -> InProcessAgent:
    root = tmp_path / "ws"
    root.mkdir(exist_ok=True)
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "ROOST_WORKSPACE": str(root)}
    scratch = scratch or tmp_path / "scratch"
    agent = AgentState(WorkspacePaths(str(root)), str(tmp_path / "state"), str(scratch), base_env)
    server_sock, client_sock = socket.socketpair()
    client_sock.settimeout(IO_TIMEOUT)  # a broken agent fails the test instead of hanging it
    connection = Connection(server_sock, OpTable(agent), agent_info())
    thread = threading.Thread(target=connection.serve, name="test-agent", daemon=True)
    thread.start()
    return InProcessAgent(root, agent, server_sock, client_sock, thread)


def _stop_agent(agent: InProcessAgent) -> None:
    try:
        agent.client_sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    agent.client_sock.close()
    agent.thread.join(IO_TIMEOUT)
    agent.agent.inflight.cancel_all()
    assert agent.agent.inflight.wait_idle(IO_TIMEOUT), "a call outlived its connection"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[InProcessAgent]:
    started = _start_agent(tmp_path)
    yield started
    _stop_agent(started)


@pytest.fixture
def client(agent: InProcessAgent) -> Iterator[AgentClient]:
    with AgentClient(agent.client_sock, client_name="tests") as connected:
        yield connected


@pytest.fixture
def root(agent: InProcessAgent) -> Path:
    return Path(agent.agent.paths.root)


class RawPeer:
    """Frames by hand over the client end, for what AgentClient would never send."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, kind: Kind, header: dict[str, Any], body: bytes = b"") -> None:
        write_frame(self.sock.sendall, kind, header, body)

    def recv(self) -> Frame | None:
        return read_frame(self.sock.recv_into)

    def hello(self) -> Frame:
        self.send(Kind.HELLO, {"versions": list(PROTOCOL_VERSIONS), "client": "raw"})
        frame = self.recv()
        assert frame is not None and frame.kind is Kind.HELLO
        return frame

    def hung_up(self) -> bool:
        """True when the agent has closed (a reset counts: it may close with our bytes unread)."""
        try:
            return self.recv() is None
        except ConnectionResetError:
            return True

    def final(self, rid: int) -> Frame:
        """Skip DATA frames until the RESPONSE or ERROR of call `rid`."""
        while True:
            frame = self.recv()
            assert frame is not None, "stream ended before the call finished"
            if frame.request_id == rid and frame.kind in (Kind.RESPONSE, Kind.ERROR):
                return frame


def _code(exc_info: pytest.ExceptionInfo[RoostError]) -> str:
    return exc_info.value.code


def _exec(client: AgentClient, **args: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    stdin = args.pop("stdin", None)
    reply = client.call("exec", args, upload=stdin)
    return reply.result, reply.streams


# -- handshake -------------------------------------------------------------------


def test_handshake_reports_version_ops_limits_and_agent(client: AgentClient) -> None:
    hello = client.hello
    assert hello["version"] == max(PROTOCOL_VERSIONS)
    assert hello["agent"] == AGENT_VERSION
    assert hello["pid"] == os.getpid()
    assert hello["workspace"] == "/workspace"
    assert {"ping", "exec", "file.read", "file.write", "archive.import", "patch.apply"} <= set(hello["ops"])
    assert hello["ops"] == sorted(hello["ops"])
    assert hello["limits"]["max_body"] == MAX_BODY_BYTES
    assert hello["limits"]["max_header"] == MAX_HEADER_BYTES
    assert client.call("ping").result["pong"] is True


def test_agent_refuses_a_client_with_no_common_version_and_hangs_up(agent: InProcessAgent) -> None:
    peer = RawPeer(agent.client_sock)
    peer.send(Kind.HELLO, {"versions": [99], "client": "future"})
    refusal = peer.recv()
    assert refusal is not None and refusal.kind is Kind.ERROR
    assert refusal.header["code"] == "unsupported_version"
    assert "99" in refusal.header["message"]
    assert refusal.header["hint"]
    assert peer.hung_up()
    agent.thread.join(IO_TIMEOUT)
    assert not agent.thread.is_alive()


def test_agent_refuses_a_first_frame_that_is_not_hello(agent: InProcessAgent) -> None:
    peer = RawPeer(agent.client_sock)
    peer.send(Kind.REQUEST, {"id": 1, "op": "ping", "args": {}})
    refusal = peer.recv()
    assert refusal is not None and refusal.kind is Kind.ERROR
    assert refusal.header["code"] == "protocol_error"
    assert peer.hung_up()


def test_garbage_after_the_handshake_gets_a_protocol_error_and_ends_the_connection(agent: InProcessAgent) -> None:
    peer = RawPeer(agent.client_sock)
    peer.hello()
    agent.client_sock.sendall(b"this is not a frame, not at all")
    refusal = peer.recv()
    assert refusal is not None and refusal.kind is Kind.ERROR
    assert refusal.header["id"] == 0
    assert refusal.header["code"] == "protocol_error"
    assert peer.hung_up()


def test_request_without_a_positive_id_is_a_protocol_error(agent: InProcessAgent) -> None:
    peer = RawPeer(agent.client_sock)
    peer.hello()
    peer.send(Kind.REQUEST, {"id": 0, "op": "ping", "args": {}})
    refusal = peer.recv()
    assert refusal is not None and refusal.kind is Kind.ERROR
    assert refusal.header["code"] == "protocol_error"


def test_unknown_op_is_refused_and_the_connection_stays_usable(client: AgentClient) -> None:
    with pytest.raises(RoostError) as info:
        client.call("no.such.op")
    assert _code(info) == "unknown_op"
    assert client.call("ping").result["pong"] is True


@pytest.mark.parametrize(
    "args",
    [{"argv": ["true"], "command": "true"}, {}, {"argv": []}, {"argv": ["true"], "timeout": -1}, {"command": "  "}],
    ids=["both", "neither", "empty-argv", "negative-timeout", "blank-command"],
)
def test_malformed_exec_arguments_are_invalid_argument(client: AgentClient, args: dict[str, Any]) -> None:
    with pytest.raises(RoostError) as info:
        client.call("exec", args)
    assert _code(info) == "invalid_argument"


@pytest.mark.parametrize("op", ["exec", "service.start"])
@pytest.mark.parametrize("what", [{"argv": ["echo", "a\0b"]}, {"command": "echo a\0b"}], ids=["argv", "command"])
def test_a_nul_byte_in_what_to_run_is_invalid_argument(client: AgentClient, op: str, what: dict[str, Any]) -> None:
    with pytest.raises(RoostError) as info:
        client.call(op, {"name": "nul", **what} if op == "service.start" else what)
    assert _code(info) == "invalid_argument"


# -- multiplexing ------------------------------------------------------------------


def test_a_fast_call_is_answered_while_a_slow_exec_runs_on_the_same_connection(client: AgentClient, root: Path) -> None:
    (root / "small.txt").write_text("small")
    slow_done = threading.Event()
    slow: dict[str, Any] = {}

    def run_slow() -> None:
        slow["result"], _ = _exec(client, command="touch started; while [ ! -e release ]; do sleep 0.01; done")
        slow_done.set()

    thread = threading.Thread(target=run_slow)
    thread.start()
    try:
        wait_until(lambda: (root / "started").exists(), what="the slow exec to start")
        assert client.call("file.read", {"path": "small.txt"}).body == b"small"
        assert not slow_done.is_set()
    finally:
        (root / "release").touch()
        thread.join(IO_TIMEOUT)
    assert slow["result"]["exit_code"] == 0


def test_concurrent_calls_on_one_connection_each_get_their_own_answer(agent: InProcessAgent) -> None:
    # Eight processes at once on a loaded 2-core machine can leave the connection silent for over
    # IO_TIMEOUT (CI saw it): the reader waits as long as the calls may take.
    agent.client_sock.settimeout(6 * IO_TIMEOUT)
    answers: dict[int, tuple[dict[str, Any], dict[str, bytes]]] = {}
    with AgentClient(agent.client_sock, client_name="tests") as client:

        def run(n: int) -> None:
            answers[n] = _exec(client, command=f"printf out{n}; printf err{n} >&2; exit {n}")

        threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(6 * IO_TIMEOUT)
    assert sorted(answers) == list(range(8))
    for n, (result, streams) in answers.items():
        assert result["exit_code"] == n
        assert streams == {"stdout": f"out{n}".encode(), "stderr": f"err{n}".encode()}


# -- exec --------------------------------------------------------------------------


def test_exec_reports_exit_code_and_keeps_stdout_and_stderr_apart(client: AgentClient) -> None:
    result, streams = _exec(client, command="printf 'to out'; printf 'to err' >&2; exit 7")
    assert result["exit_code"] == 7
    assert result["signal"] is None
    assert result["timed_out"] is False
    assert streams["stdout"] == b"to out"
    assert streams["stderr"] == b"to err"
    assert result["stdout_bytes"] == 6 and result["stderr_bytes"] == 6
    assert result["stdout_truncated"] is False and result["stderr_truncated"] is False
    assert result["duration_ms"] >= 0


def test_exec_feeds_an_upload_to_stdin(client: AgentClient) -> None:
    result, streams = _exec(client, argv=["cat"], stdin=[b"hello ", b"world"])
    assert result["exit_code"] == 0
    assert streams["stdout"] == b"hello world"


def test_exec_streams_stdin_larger_than_a_pipe_without_deadlock(client: AgentClient) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    result, streams = _exec(client, argv=["cat"], stdin=[payload])
    assert result["exit_code"] == 0
    assert streams["stdout"] == payload


def test_exec_without_stdin_reads_end_of_file(client: AgentClient) -> None:
    _, streams = _exec(client, command="cat; echo done")
    assert streams["stdout"] == b"done\n"


def test_exec_passes_env_on_top_of_the_base_environment(client: AgentClient, root: Path) -> None:
    _, streams = _exec(client, command='printf "%s|%s" "$GREETING" "$ROOST_WORKSPACE"', env={"GREETING": "hi there"})
    assert streams["stdout"] == f"hi there|{root}".encode()


def test_exec_runs_in_the_requested_cwd(client: AgentClient, root: Path) -> None:
    (root / "sub" / "dir").mkdir(parents=True)
    _, default = _exec(client, argv=["pwd"])
    _, absolute = _exec(client, argv=["pwd"], cwd="/workspace/sub")
    _, relative = _exec(client, argv=["pwd"], cwd="sub/dir")
    assert default["stdout"].decode().strip() == str(root)
    assert absolute["stdout"].decode().strip() == str(root / "sub")
    assert relative["stdout"].decode().strip() == str(root / "sub" / "dir")


def test_exec_starts_in_the_directory_it_checked_even_if_the_path_is_swapped_for_a_link_before_the_start(
    client: AgentClient, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "d").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    real_popen = subprocess.Popen

    def swap_then_start(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        os.rename(root / "d", root / "d.real")  # the workspace wins the race: d is a link out now
        os.symlink(outside, root / "d")
        return real_popen(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", swap_then_start)
        _, streams = _exec(client, command="pwd -P; touch here", cwd="/workspace/d")
    assert streams["stdout"].decode().strip() == str(root / "d.real")
    assert list(outside.iterdir()) == []
    assert (root / "d.real" / "here").exists()


def test_exec_child_holds_no_descriptor_of_its_cwd(client: AgentClient, root: Path) -> None:
    (root / "sub").mkdir()
    code = "import os; print(' '.join(sorted(os.listdir('/proc/self/fd'))))"
    _, streams = _exec(client, argv=[sys.executable, "-c", code], cwd="sub")
    assert streams["stdout"].split() == [b"0", b"1", b"2", b"3"]  # 3: the listing's own


def test_exec_command_is_a_shell_string_and_argv_is_taken_literally(client: AgentClient) -> None:
    _, shell = _exec(client, command="echo a; echo b | tr b c")
    _, literal = _exec(client, argv=["printf", "%s", "a; echo b | $HOME"])
    assert shell["stdout"] == b"a\nc\n"
    assert literal["stdout"] == b"a; echo b | $HOME"


def test_exec_of_a_missing_program_is_command_not_found(client: AgentClient) -> None:
    with pytest.raises(RoostError) as info:
        _exec(client, argv=["roost-no-such-program-xyz"])
    assert _code(info) == "command_not_found"
    assert "roost-no-such-program-xyz" in info.value.message


def test_exec_in_a_missing_cwd_is_path_not_found(client: AgentClient) -> None:
    with pytest.raises(RoostError) as info:
        _exec(client, argv=["true"], cwd="/workspace/nowhere")
    assert _code(info) == "path_not_found"


def test_exec_cwd_outside_the_workspace_is_refused(client: AgentClient) -> None:
    with pytest.raises(RoostError) as info:
        _exec(client, argv=["true"], cwd="/etc")
    assert _code(info) == "path_outside_workspace"


def test_exec_timeout_kills_the_whole_process_group(client: AgentClient, root: Path) -> None:
    started = time.monotonic()
    result, _ = _exec(
        client,
        command="echo $$ >> pids; sleep 100 & echo $! >> pids; sleep 100 & echo $! >> pids; wait",
        timeout=0.3,
    )
    assert time.monotonic() - started < 5
    assert result["timed_out"] is True
    assert result["exit_code"] is None
    assert result["signal"] == "SIGKILL"
    pids = read_pids(root / "pids")
    assert len(pids) == 3
    wait_until(lambda: not any(pid_alive(p) for p in pids), what="every process of the group to die")


def test_exec_output_cap_truncates_and_counts_exact_bytes(client: AgentClient) -> None:
    result, streams = _exec(client, command="head -c 100000 /dev/zero; head -c 50 /dev/zero >&2", max_output_bytes=1000)
    assert len(streams["stdout"]) == 1000
    assert len(streams["stderr"]) == 50
    assert result["stdout_bytes"] == 100000 and result["stdout_truncated"] is True
    assert result["stderr_bytes"] == 50 and result["stderr_truncated"] is False


def test_exec_output_cap_of_zero_sends_nothing_but_still_counts(client: AgentClient) -> None:
    result, streams = _exec(client, command="printf 12345", max_output_bytes=0)
    assert streams.get("stdout", b"") == b""
    assert result["stdout_bytes"] == 5 and result["stdout_truncated"] is True


def test_exec_without_a_cap_sends_everything(client: AgentClient) -> None:
    result, streams = _exec(client, command="head -c 5000000 /dev/zero", max_output_bytes=None)
    assert len(streams["stdout"]) == 5_000_000
    assert result["stdout_truncated"] is False


def test_exec_does_not_wait_for_a_background_child_holding_the_pipes(client: AgentClient, root: Path) -> None:
    started = time.monotonic()
    result, streams = _exec(client, command="sleep 100 & echo $! > pid; echo done")
    assert time.monotonic() - started < 2.0
    assert result["exit_code"] == 0
    assert streams["stdout"] == b"done\n"
    (pid,) = read_pids(root / "pid")
    wait_until(lambda: not pid_alive(pid), what="the lingering background child to be killed")


def test_exec_does_not_wait_for_a_background_child_that_keeps_writing(client: AgentClient, root: Path) -> None:
    # Output keeps arriving after the command exits: its exit must still be noticed between reads.
    started = time.monotonic()
    result, _ = _exec(client, command="(while :; do echo x; done) & echo $! > pid; exit 3", max_output_bytes=10)
    assert time.monotonic() - started < 2.0
    assert result["exit_code"] == 3
    (pid,) = read_pids(root / "pid")
    wait_until(lambda: not pid_alive(pid), what="the writing background child to be killed")


def test_closing_the_connection_mid_exec_kills_the_command(agent: InProcessAgent, root: Path) -> None:
    client = AgentClient(agent.client_sock)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            _exec(client, command="echo $$ > pid; exec sleep 100")
        except RoostError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    (pid,) = wait_until(lambda: read_pids(root / "pid"), what="the command to start")
    client.close()
    thread.join(IO_TIMEOUT)
    assert isinstance(outcome.get("error"), AgentError)
    assert outcome["error"].code == "agent_disconnected"  # type: ignore[attr-defined]
    wait_until(lambda: not pid_alive(pid), what="the orphaned command to be killed")
    agent.thread.join(IO_TIMEOUT)
    assert not agent.thread.is_alive()


def test_cancel_frame_kills_a_running_exec_and_the_call_ends_cancelled(agent: InProcessAgent, root: Path) -> None:
    peer = RawPeer(agent.client_sock)
    peer.hello()
    peer.send(Kind.REQUEST, {"id": 5, "op": "exec", "args": {"command": "echo $$ > pid; exec sleep 100"}})
    (pid,) = wait_until(lambda: read_pids(root / "pid"), what="the command to start")
    peer.send(Kind.CANCEL, {"id": 5})
    final = peer.final(5)
    assert final.kind is Kind.ERROR
    assert final.header["code"] == "cancelled"
    wait_until(lambda: not pid_alive(pid), what="the cancelled command to die")
    peer.send(Kind.REQUEST, {"id": 6, "op": "ping", "args": {}})
    assert peer.final(6).kind is Kind.RESPONSE


def test_cancel_for_an_unknown_call_is_ignored(agent: InProcessAgent) -> None:
    peer = RawPeer(agent.client_sock)
    peer.hello()
    peer.send(Kind.CANCEL, {"id": 42})
    peer.send(Kind.REQUEST, {"id": 1, "op": "ping", "args": {}})
    assert peer.final(1).header["result"]["pong"] is True


# -- files -------------------------------------------------------------------------


def test_write_then_read_round_trips_binary_content(client: AgentClient, root: Path) -> None:
    payload = bytes(range(256)) * 100
    written = client.call("file.write", {"path": "dir/data.bin"}, upload=[payload[:1000], payload[1000:]]).result
    assert written == {"path": "/workspace/dir/data.bin", "size": len(payload), "mode": 0o644}
    assert (root / "dir" / "data.bin").read_bytes() == payload
    reply = client.call("file.read", {"path": "/workspace/dir/data.bin"})
    assert reply.body == payload
    assert reply.result["size"] == len(payload) and reply.result["eof"] is True


def test_write_replaces_atomically_and_keeps_an_existing_mode(client: AgentClient, root: Path) -> None:
    client.call("file.write", {"path": "run.sh", "mode": 0o755}, upload=[b"#!/bin/sh\n"])
    client.call("file.write", {"path": "run.sh"}, upload=[b"#!/bin/sh\necho hi\n"])
    assert (root / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert [p.name for p in root.iterdir()] == ["run.sh"]  # no temp files left


def test_write_empty_file(client: AgentClient, root: Path) -> None:
    assert client.call("file.write", {"path": "empty"}, upload=[]).result["size"] == 0
    assert (root / "empty").read_bytes() == b""


def test_write_without_parents_into_a_missing_directory_is_path_not_found(client: AgentClient) -> None:
    with pytest.raises(RoostError) as info:
        client.call("file.write", {"path": "missing/x.txt", "parents": False}, upload=[b"x"])
    assert _code(info) == "path_not_found"


def test_read_window_by_offset_and_max_bytes(client: AgentClient, root: Path) -> None:
    (root / "digits").write_bytes(b"0123456789")
    middle = client.call("file.read", {"path": "digits", "offset": 3, "max_bytes": 4})
    tail = client.call("file.read", {"path": "digits", "offset": 8, "max_bytes": 4})
    beyond = client.call("file.read", {"path": "digits", "offset": 50, "max_bytes": 4})
    assert (middle.body, middle.result["eof"], middle.result["length"]) == (b"3456", False, 4)
    assert (tail.body, tail.result["eof"]) == (b"89", True)
    assert (beyond.body, beyond.result["eof"], beyond.result["size"]) == (b"", True, 10)


def test_read_above_the_per_call_limit_is_read_too_large(client: AgentClient, root: Path) -> None:
    (root / "f").write_bytes(b"x")
    with pytest.raises(RoostError) as info:
        client.call("file.read", {"path": "f", "max_bytes": 8 * 1024 * 1024 + 1})
    assert _code(info) == "read_too_large"
    assert info.value.hint


def test_read_of_a_missing_file_or_a_directory_is_refused(client: AgentClient, root: Path) -> None:
    (root / "d").mkdir()
    with pytest.raises(RoostError) as missing:
        client.call("file.read", {"path": "nope"})
    with pytest.raises(RoostError) as directory:
        client.call("file.read", {"path": "d"})
    assert _code(missing) == "path_not_found"
    assert _code(directory) == "is_a_directory"


def test_stat_and_list_describe_entries(client: AgentClient, root: Path) -> None:
    (root / "a").mkdir()
    (root / "a" / "inner.txt").write_bytes(b"12345")
    (root / "top.txt").write_bytes(b"1")
    os.symlink("top.txt", root / "link")
    entry = client.call("file.stat", {"path": "a/inner.txt"}).result
    assert (entry["path"], entry["name"], entry["type"], entry["size"]) == (
        "/workspace/a/inner.txt",
        "inner.txt",
        "file",
        5,
    )
    link = client.call("file.stat", {"path": "link"}).result
    assert (link["type"], link["target"]) == ("symlink", "top.txt")
    shallow, summary = listed(client, "file.list", {"path": "/workspace"})
    assert [e["path"] for e in shallow] == ["/workspace/a", "/workspace/link", "/workspace/top.txt"]
    assert summary == {"path": "/workspace", "count": 3, "next_cursor": None}
    deep, _ = listed(client, "file.list", {"path": "/workspace", "recursive": True})
    assert [e["path"] for e in deep] == [
        "/workspace/a",
        "/workspace/a/inner.txt",
        "/workspace/link",
        "/workspace/top.txt",
    ]
    first, summary = listed(client, "file.list", {"path": "/workspace", "limit": 1})
    assert [e["path"] for e in first] == ["/workspace/a"] and summary["next_cursor"]
    rest, summary = listed(client, "file.list", {"path": "/workspace", "cursor": summary["next_cursor"]})
    assert [e["path"] for e in rest] == ["/workspace/link", "/workspace/top.txt"] and summary["next_cursor"] is None


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "/workspace/../etc/passwd", "a/../../x", "/workspacefoo/x"])
def test_paths_outside_the_workspace_are_refused(client: AgentClient, path: str) -> None:
    for op, upload in (("file.read", None), ("file.write", [b"x"]), ("file.stat", None), ("file.delete", None)):
        with pytest.raises(RoostError) as info:
            client.call(op, {"path": path}, upload=upload)
        assert _code(info) == "path_outside_workspace", (op, path)


def test_symlinks_are_never_followed_out_of_the_workspace(client: AgentClient, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    os.symlink(outside / "secret", root / "to-secret")
    os.symlink(outside, root / "to-dir")
    for op, path, upload in (
        ("file.read", "to-secret", None),
        ("file.write", "to-secret", [b"overwritten"]),
        ("file.read", "to-dir/secret", None),
        ("file.write", "to-dir/new", [b"planted"]),
        ("file.list", "to-dir", None),
    ):
        with pytest.raises(RoostError) as info:
            client.call(op, {"path": path}, upload=upload)
        assert _code(info) == "path_outside_workspace", (op, path)
    assert (outside / "secret").read_text() == "secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_deleting_a_symlink_removes_the_link_not_its_target(client: AgentClient, root: Path, tmp_path: Path) -> None:
    target = tmp_path / "keep-me"
    target.write_text("keep")
    os.symlink(target, root / "link")
    assert client.call("file.delete", {"path": "link"}).result["type"] == "symlink"
    assert not (root / "link").is_symlink()
    assert target.read_text() == "keep"


def test_delete_removes_files_and_refuses_non_empty_directories_unless_recursive(
    client: AgentClient, root: Path
) -> None:
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f.txt").write_text("x")
    (root / "lone.txt").write_text("x")
    assert client.call("file.delete", {"path": "lone.txt"}).result == {
        "path": "/workspace/lone.txt",
        "deleted": True,
        "type": "file",
    }
    with pytest.raises(RoostError) as info:
        client.call("file.delete", {"path": "d"})
    assert _code(info) == "directory_not_empty"
    assert (root / "d" / "e" / "f.txt").exists()
    client.call("file.delete", {"path": "d", "recursive": True})
    assert list(root.iterdir()) == []
    with pytest.raises(RoostError) as gone:
        client.call("file.delete", {"path": "d"})
    assert _code(gone) == "path_not_found"


@pytest.mark.parametrize("path", ["/workspace", "/workspace/", ".", "sub/..", "/workspace/./"])
def test_deleting_the_workspace_itself_is_refused(client: AgentClient, root: Path, path: str) -> None:
    (root / "keep.txt").write_text("x")
    with pytest.raises(RoostError) as info:
        client.call("file.delete", {"path": path, "recursive": True})
    assert _code(info) == "invalid_argument"
    assert (root / "keep.txt").exists()


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_mirroring_import_keeps_a_staging_area_that_lives_inside_the_workspace(tmp_path: Path) -> None:
    # The agent's default scratch is /workspace/.roost-staging (the sandbox uses it).
    agent = _start_agent(tmp_path, scratch=tmp_path / "ws" / ".roost-staging")
    try:
        root = tmp_path / "ws"
        (root / "old.txt").write_text("old")
        with AgentClient(agent.client_sock) as client:
            result = client.call(
                "archive.import", {"dest": "/workspace", "delete": True}, upload=[_tar({"new.txt": b"new"})]
            ).result
        assert result["deleted"] == 1
        assert sorted(p.name for p in root.iterdir()) == ["new.txt"]
        assert (root / "new.txt").read_bytes() == b"new"
    finally:
        _stop_agent(agent)


# -- the agent process ---------------------------------------------------------------


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # Deeper than sockaddr_un's 108 bytes: the agent must reach it another way.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    sock_path = str(deep / "agent.sock")
    assert len(sock_path.encode()) > 108
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "roost.agent",
            "--listen",
            f"unix:{sock_path}",
            "--workspace-root",
            str(tmp_path / "ws"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: os.path.exists(sock_path) or proc.poll() is not None, timeout=IO_TIMEOUT)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        yield proc, sock_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(IO_TIMEOUT)
        if proc.stderr:
            proc.stderr.close()


def test_agent_process_serves_a_socket_path_longer_than_sockaddr_un(
    agent_process: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, sock_path = agent_process
    with connect_unix(sock_path, timeout=IO_TIMEOUT) as client:
        assert client.hello["pid"] == proc.pid
        result = client.call("exec", {"command": "printf %s $ROOST_WORKSPACE"})
        assert result.result["exit_code"] == 0
        assert result.streams["stdout"].endswith(b"/ws")
    assert os.stat(sock_path).st_mode & 0o077 == 0  # the socket is for its owner only


def test_agent_process_exits_promptly_on_sigterm(agent_process: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, sock_path = agent_process
    with connect_unix(sock_path, timeout=IO_TIMEOUT) as client:  # an idle open connection must not hold it up
        client.call("ping")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(IO_TIMEOUT) == 0
    assert time.monotonic() - started < 3.0


def test_agent_process_exits_on_the_shutdown_op(agent_process: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, sock_path = agent_process
    with connect_unix(sock_path, timeout=IO_TIMEOUT) as client:
        assert client.call("shutdown").result == {"stopping": True, "services_stopped": [], "shells_closed": []}
    assert proc.wait(IO_TIMEOUT) == 0


# What only operations need: loaded by an agent that starts, it would stay in every idle agent's
# memory (benchmarks/agent_rss.py measures that memory against its target).
HANDLER_ONLY_MODULES = ("tarfile", "shutil", "subprocess", "pty", "difflib", "lzma", "bz2")


def test_an_idle_agent_has_imported_nothing_only_operations_need() -> None:
    probe = "import sys, roost.agent.__main__; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True, timeout=IO_TIMEOUT
    ).stdout.split()
    assert "roost.agent.server" in loaded  # the probe did load the agent
    assert [name for name in HANDLER_ONLY_MODULES if name in loaded] == []


def _runs_out_of_space(agent: AgentState, args: PingArgs, ctx: RequestContext) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _has_an_io_error(agent: AgentState, args: PingArgs, ctx: RequestContext) -> None:
    raise OSError(errno.EIO, "Input/output error")


def test_a_full_disk_in_any_op_becomes_disk_full_with_a_hint(tmp_path: Path) -> None:
    agent = AgentState(WorkspacePaths(str(tmp_path)), str(tmp_path / "state"), str(tmp_path / "scratch"))
    messages = OpMessages(PingArgs, PingResult)  # no arguments, and no result ever made
    table = OpTable(
        agent, {"fill": _runs_out_of_space, "break": _has_an_io_error}, {"fill": messages, "break": messages}
    )

    def call(op: str) -> None:
        table.call(RequestContext(1, op, {}, b"", lambda channel, data: None, None, threading.Event()))

    with pytest.raises(OpError) as full:
        call("fill")
    with pytest.raises(OSError) as other:  # anything else stays a bug report (`internal`)
        call("break")

    assert (full.value.code, bool(full.value.hint)) == ("disk_full", True)
    assert other.value.errno == errno.EIO


def test_the_scan_a_diff_made_is_saved_for_a_restarted_agent_once_the_diff_is_answered(
    agent: InProcessAgent, client: AgentClient, root: Path
) -> None:
    client.call("snapshot.create", {"name": "baseline"})
    (root / "new.txt").write_text("new\n")
    assert client.call("workspace.diff", {"stat": True}).result["counts"] == {"added": 1}
    index = Path(agent.agent.state_dir) / "tree-index.json"

    def saved_paths() -> set[str]:
        try:
            return {row[0] for row in json.loads(index.read_text())["entries"]}
        except (FileNotFoundError, ValueError):
            return set()

    wait_until(lambda: "new.txt" in saved_paths(), what="the diff's scan in the index on disk")
