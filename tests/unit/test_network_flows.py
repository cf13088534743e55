"""The gateway's bounds on what one workspace may hold open: connections and UDP flows past them are refused and logged."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.network.decision_log import DecisionLog, read_decisions
from roost.network.decisions import AddressBook
from roost.network.flows import MAX_UDP_FLOWS, FlowJudge, open_udp_flow, tcp_flow_in_slot
from roost.network.policy import parse_policy


@pytest.fixture
def judge(tmp_path: Path) -> FlowJudge:
    return FlowJudge(lambda: parse_policy("egress"), AddressBook(), DecisionLog(tmp_path), lambda address: False)


@pytest.fixture
def accepted() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A TCP connection on loopback: the client end, and the accepted end the gateway would hold."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _peer = listener.accept()
    yield client, server
    client.close()
    server.close()


def test_a_connection_past_the_last_free_slot_is_reset_and_logged(
    judge: FlowJudge, accepted: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    client, server = accepted
    slots = threading.BoundedSemaphore(1)
    slots.acquire()  # the one slot is held by another connection
    tcp_flow_in_slot(server, judge=judge, slots=slots)
    with pytest.raises(ConnectionResetError):
        client.recv(1)
    (decision,) = read_decisions(tmp_path)
    assert (decision.protocol, decision.verdict, decision.reason) == ("tcp", "denied", "too_many_connections")


def test_a_slot_is_given_back_when_its_connection_ends(
    judge: FlowJudge, accepted: tuple[socket.socket, socket.socket]
) -> None:
    _client, server = accepted
    slots = threading.BoundedSemaphore(1)
    tcp_flow_in_slot(server, judge=judge, slots=slots)  # 127.0.0.1 is the host: refused at once
    assert slots.acquire(blocking=False)


def test_a_udp_flow_past_the_bound_is_refused_once_and_then_quietly(judge: FlowJudge, tmp_path: Path) -> None:
    key = (("100.96.0.2", 40000), ("192.0.2.1", 53))
    refused: dict[tuple[tuple[str, int], tuple[str, int]], float] = {}
    assert open_udp_flow(key, judge, refused, MAX_UDP_FLOWS) is None
    assert open_udp_flow(key, judge, refused, MAX_UDP_FLOWS) is None
    assert [(d.verdict, d.reason) for d in read_decisions(tmp_path)] == [("denied", "too_many_flows")]
    flow = open_udp_flow((("100.96.0.2", 40001), ("192.0.2.1", 53)), judge, refused, 0)
    assert flow is not None
    flow.upstream.close()
