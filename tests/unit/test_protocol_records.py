"""Results of any size at the protocol level: an in-process agent streams records to the real client.

The handler `emit` below stands in for a listing of `count` entries. It
produces its records one at a time and never holds them, so what the
process holds while a result crosses is the protocol's doing: a window of
frames, one body being decoded.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.control import ping
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.record_page import RecordPage
from roost.agent.server.connection import Connection, agent_info
from roost.agent.state import AgentState
from roost.errors import ProtocolError, RoostError, error_from_code
from roost.protocol import PROTOCOL_VERSIONS, Frame, Kind, read_frame, write_frame
from roost.protocol.messages import Op
from roost.protocol.ops import Message, OpMessages, message, wire
from roost.protocol.ops.paging import PageArgs, PageSummary
from roost.protocol.ops.table import OP_TABLE
from roost.protocol.records import RecordWriter, decode_cursor, decode_records, encode_cursor, encode_records
from roost.rpc import AgentClient, RecordStream

IO_TIMEOUT = 20.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@message
class EmitArgs(PageArgs):
    OP = "emit"
    count: int = wire(0, minimum=0)


@message
class EmitRecord(Message):
    n: int = wire()
    path: str = wire()


@message
class HugeArgs(Message):
    OP = "huge"


@message
class HugeResult(Message):
    entries: tuple[str, ...] = wire()


def emit(agent: AgentState, args: EmitArgs, ctx: RequestContext) -> HandlerResult:
    """`count` records `{"n": i, "path": ...}` in order, key `i`; honours cursor and limit."""
    page = RecordPage(ctx, args)
    for i in range(args.count):
        key = (b"%010d" % i,)
        if page.seen(key):
            continue
        if not page.add(key, EmitRecord(n=i, path=f"/workspace/dir{i // 1000:04d}/f{i:07d}")):
            break
    return HandlerResult(page.summary(PageSummary))


def huge(agent: AgentState, args: HugeArgs, ctx: RequestContext) -> HandlerResult:
    """A result that does not fit in a header: what every growing result used to be."""
    return HandlerResult(HugeResult(entries=("/workspace/" + "x" * 100,) * 2000))


MESSAGES = {
    "emit": OpMessages(EmitArgs, PageSummary, EmitRecord),
    "huge": OpMessages(HugeArgs, HugeResult),
    Op.PING: OP_TABLE[Op.PING],
}


@dataclass
class Agent:
    """An in-process agent on one end of a socketpair; the test holds the other end (`sock`)."""

    sock: socket.socket
    agent: AgentState

    def client(self) -> AgentClient:
        return AgentClient(self.sock)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """An agent with the `emit` and `huge` ops (and ping); the connection and every call end at teardown."""
    root = tmp_path / "ws"
    root.mkdir()
    agent = AgentState(WorkspacePaths(str(root)), str(tmp_path / "state"), str(tmp_path / "scratch"), {})
    ops = OpTable(agent, {"emit": emit, "huge": huge, "ping": ping}, MESSAGES)
    agent_sock, host_sock = socket.socketpair()
    host_sock.settimeout(IO_TIMEOUT)  # a broken agent fails the test instead of hanging it
    thread = threading.Thread(target=Connection(agent_sock, ops, agent_info()).serve, daemon=True)
    thread.start()
    yield Agent(host_sock, agent)
    try:
        host_sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    host_sock.close()
    thread.join(IO_TIMEOUT)
    agent.inflight.cancel_all()
    assert agent.inflight.wait_idle(IO_TIMEOUT), "a call outlived its connection"


def resident_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_SIZE


def test_a_million_records_cross_in_bounded_memory_on_both_sides(agent: Agent) -> None:
    """Agent and host share this process: its resident size bounds what both hold at once."""
    count = 1_000_000
    client = agent.client()
    before = resident_bytes()
    grown = 0
    moved = 0
    expected = 0
    with RecordStream(client.stream("emit", {"count": count})) as stream:
        for record in stream:
            assert record["n"] == expected, "every record once, in order"
            expected += 1
            moved += len(record["path"]) + 16
            if expected % 25_000 == 0:
                grown = max(grown, resident_bytes() - before)
        result = stream.result
    assert expected == count and result == {"count": count, "next_cursor": None}
    assert moved > 30 * 1024 * 1024
    # Held whole, the result would be well over 100 MiB of Python objects; streamed, a window (4 MiB) at most.
    assert grown < 16 * 1024 * 1024, f"resident size grew by {grown / 2**20:.1f} MiB"


def _data_until(sock: socket.socket, rid: int, stop: Kind) -> tuple[int, Frame]:
    """DATA bytes of request `rid` read before the first frame of kind `stop` (returned)."""
    received = 0
    while True:
        frame = read_frame(sock.recv_into)
        assert frame is not None, "the agent closed the connection"
        if frame.kind is Kind.DATA and frame.request_id == rid:
            received += len(frame.body)
        elif frame.kind is stop:
            return received, frame


def test_the_agent_never_runs_more_than_a_window_ahead_of_the_hosts_credit(agent: Agent) -> None:
    window = 256 * 1024
    sock = agent.sock  # raw frames: the test plays a host that credits only when it says so
    write_frame(sock.sendall, Kind.HELLO, {"versions": list(PROTOCOL_VERSIONS), "client": "test"})
    hello = read_frame(sock.recv_into)
    assert hello is not None and hello.kind is Kind.HELLO
    write_frame(sock.sendall, Kind.REQUEST, {"id": 1, "op": "emit", "args": {"count": 1_000_000}, "window": window})

    # No credit yet: the agent fills the window and waits. A ping answered on the same
    # connection marks a point in the stream: every DATA frame sent before it is in by then.
    received = 0
    while received < window - 64 * 1024:
        frame = read_frame(sock.recv_into)
        assert frame is not None and frame.kind is Kind.DATA
        received += len(frame.body)
    write_frame(sock.sendall, Kind.REQUEST, {"id": 2, "op": "ping", "args": {}})
    more, pong = _data_until(sock, 1, Kind.RESPONSE)
    assert pong.request_id == 2
    assert received + more <= window, "DATA beyond the window before any credit"

    # Credit half of what was read: the stream moves on, and still never past the window.
    credit = (received + more) // 2
    write_frame(sock.sendall, Kind.CREDIT, {"id": 1, "bytes": credit})
    frame = read_frame(sock.recv_into)
    assert frame is not None and (frame.kind, frame.request_id) == (Kind.DATA, 1), "the credit let the stream go on"
    write_frame(sock.sendall, Kind.REQUEST, {"id": 3, "op": "ping", "args": {}})
    after, pong = _data_until(sock, 1, Kind.RESPONSE)
    assert pong.request_id == 3
    sent = received + more + len(frame.body) + after
    assert sent <= window + credit, "DATA beyond the window after a credit"
    # A cancel wakes the waiting sender at once: the call ends with its one error.
    write_frame(sock.sendall, Kind.CANCEL, {"id": 1})
    _, ended = _data_until(sock, 1, Kind.ERROR)
    assert (ended.request_id, ended.header["code"]) == (1, "cancelled")


def test_a_cursor_resumes_a_list_after_the_last_record_sent_and_each_record_comes_once(agent: Agent) -> None:
    client = agent.client()
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        args: dict[str, Any] = {"count": 5_500, "limit": 1000}
        if cursor is not None:
            args["cursor"] = cursor
        with RecordStream(client.stream("emit", args)) as stream:
            page = [record["n"] for record in stream]
            cursor = stream.result["next_cursor"]
        seen += page
        pages += 1
        assert len(page) <= 1000
        if cursor is None:
            break
    assert seen == list(range(5_500)) and pages == 6


def test_leaving_a_stream_early_cancels_the_call(agent: Agent) -> None:
    client = agent.client()
    with RecordStream(client.stream("emit", {"count": 10_000_000})) as stream:
        first = next(iter(stream))
    assert first["n"] == 0
    assert agent.agent.inflight.wait_idle(IO_TIMEOUT), "the agent stopped walking once the host stopped reading"
    # The connection is still good for the next call.
    with RecordStream(client.stream("emit", {"count": 3})) as stream:
        assert [record["n"] for record in stream] == [0, 1, 2]


@pytest.mark.parametrize("cursor", ["", "c1.", "c1.!!!", "not-a-cursor", "c1." + "A" * 20_000])
def test_a_cursor_no_list_handed_out_is_refused(agent: Agent, cursor: str) -> None:
    with pytest.raises(RoostError) as caught, RecordStream(agent.client().stream("emit", {"cursor": cursor})) as s:
        list(s)
    assert caught.value.code == "invalid_argument"


def test_cursors_carry_any_bytes_of_a_key() -> None:
    key = (b"dir", b"caf\xe9", b"\x01\x7f\xff", b"sp ace")
    assert decode_cursor(encode_cursor(key)) == key


def test_a_batch_too_large_for_one_frame_goes_in_several_whole_bodies() -> None:
    bodies: list[bytes] = []
    writer = RecordWriter(lambda _ch, body: bodies.append(body), "records", frame_bytes=10**9, max_body=4096)
    for i in range(100):
        writer.add({"n": i, "text": "y" * 200})
    writer.flush()
    assert len(bodies) > 1 and all(len(body) <= 4096 for body in bodies)
    assert [record["n"] for body in bodies for record in decode_records(body)] == list(range(100))


def test_a_body_that_is_not_an_array_of_objects_is_a_protocol_error() -> None:
    assert decode_records(encode_records([{"a": 1}])) == [{"a": 1}]
    for body in (b'{"a": 1}', b"[1, 2]", b"[{", b"\xff"):
        with pytest.raises(ValueError):
            decode_records(body)


def test_a_result_that_does_not_fit_a_header_says_what_and_what_to_do(agent: Agent) -> None:
    with pytest.raises(ProtocolError) as caught:
        agent.client().call("huge")
    error = caught.value
    assert error.code == "frame_too_large"
    assert "the result of huge does not fit in one frame" in error.message
    assert "different versions" not in (error.hint or "") and "stream" in (error.hint or "")


def test_arguments_too_large_for_a_request_say_so_before_anything_is_sent(agent: Agent) -> None:
    with pytest.raises(ProtocolError) as caught:
        agent.client().call("emit", {"count": 1, "padding": "x" * 70_000})
    error = caught.value
    assert error.code == "frame_too_large" and "the arguments of emit do not fit in one frame" in error.message
    assert "stdin or a file" in (error.hint or "")


def test_frame_too_large_from_any_source_is_never_blamed_on_versions() -> None:
    error = error_from_code("frame_too_large", "frame header of 70000 bytes exceeds 65536")
    assert isinstance(error, ProtocolError) and "version" not in (error.hint or "")
    assert "stdin or a file" in (error.hint or "")
