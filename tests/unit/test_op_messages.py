"""The op table: every op has typed messages, the agent's handlers take them, and each message
round-trips through its wire form and refuses what is not one.

Samples are made from each message's own fields (every field given a value of its type, names
that need quoting included), so a message added later is walked without a test to write.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest

from roost.agent.ops import ROUTES
from roost.protocol import Code, Op, OpError
from roost.protocol.ops import Message
from roost.protocol.ops.agent import PingResult, RestoredArgs
from roost.protocol.ops.execs import ExecArgs
from roost.protocol.ops.paging import PageArgs
from roost.protocol.ops.secrets import SecretGrant
from roost.protocol.ops.services import ReadinessProbe, ServiceStartArgs
from roost.protocol.ops.shells import ShellReadArgs, ShellSignalArgs
from roost.protocol.ops.snapshots import DiffRecord
from roost.protocol.ops.table import OP_TABLE
from roost.protocol.records import encode_cursor

OPS = sorted(value for name, value in vars(Op).items() if name.isupper())
# A name with a byte that is not UTF-8, a quote and a newline: it travels quoted.
ODD_NAME = '/workspace/caf\udce9 "q"\n'
# What a message's own rules across fields ask of a sample that gives every field.
RULES: dict[type[Message], dict[str, Any]] = {
    ExecArgs: {"command": None},
    ServiceStartArgs: {"command": None},
    ReadinessProbe: {"file": None, "http": None, "command": None},
    DiffRecord: {"patch": None},
    ShellSignalArgs: {"signal": "term"},
    ShellReadArgs: {"wait_idle_ms": None, "until_command_done": False},  # one wait at a time
    SecretGrant: {"value": "dmFsdWU=", "path": "/dev/shm/token"},
    RestoredArgs: {"key_hex": "ab" * 32, "entropy_hex": "cd" * 64, "hostname": "ws-0123", "machine_id": "ef" * 16},
}
# ... and of a sample that gives no more than they need.
LEAST: dict[type[Message], dict[str, Any]] = {
    ExecArgs: {"argv": ("ls",)},
    ServiceStartArgs: {"argv": ("sleep", "1")},
    ReadinessProbe: {"tcp": "8000"},
    DiffRecord: {"path": "/workspace/a", "change": "added"},
}


def _messages() -> list[type[Message]]:
    """Every message type the table names, nested ones included."""
    found: list[type[Message]] = []
    pending = [kind for entry in OP_TABLE.values() for kind in (entry.args, entry.result, entry.records) if kind]
    while pending:
        kind = pending.pop()
        if kind in found:
            continue
        found.append(kind)
        for nested in _field_types(kind).values():
            items = typing.get_args(nested) if typing.get_origin(nested) is tuple else (nested,)
            pending.extend(item for item in items if _is_message(item))
    return sorted(found, key=lambda kind: kind.__name__)


def _is_message(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Message)


def _field_types(message: type[Message]) -> dict[str, Any]:
    """Each field's type, without `| None`."""
    found = {}
    for name, kind in typing.get_type_hints(message).items():
        if name not in {field.name for field in dataclasses.fields(message)}:  # type: ignore[arg-type]
            continue
        args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        found[name] = args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) else kind
    return found


def _value(field: dataclasses.Field[Any], kind: Any) -> Any:
    """A value of `kind` within the field's bounds."""
    meta = field.metadata
    if meta.get("choices"):
        return meta["choices"][-1]
    origin = typing.get_origin(kind)
    if meta.get("name"):
        return (ODD_NAME, "/workspace/b") if origin is tuple else ODD_NAME
    if _is_message(kind):
        return sample(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return (sample(item),) if _is_message(item) else ("a", "b")
    if origin is dict:
        item = typing.get_args(kind)[1]
        return {"added": 2} if item is int else {"KEY": "value"}
    if kind is bool:
        return True
    if kind is int:
        return int(meta.get("maximum") or max(meta.get("minimum") or 0, 1))
    if kind is float:
        return 1.5
    return "x"


def sample(message: type[Message]) -> Message:
    """`message` with every field given (but where its rules across fields say otherwise)."""
    kinds = _field_types(message)
    values = {field.name: _value(field, kinds[field.name]) for field in dataclasses.fields(message)}  # type: ignore[arg-type]
    if issubclass(message, PageArgs):
        values["cursor"] = encode_cursor((b"src", b"a.txt"))
    values.update(RULES.get(message, {}))
    return message(**values)


def _required(message: type[Message]) -> list[str]:
    return [
        field.name
        for field in dataclasses.fields(message)  # type: ignore[arg-type]
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ]


def test_every_op_has_argument_and_result_messages_and_the_agent_serves_exactly_those() -> None:
    assert sorted(OP_TABLE) == OPS
    assert sorted(ROUTES) == OPS
    for op, entry in OP_TABLE.items():
        assert op == entry.args.OP, (op, entry.args)
        assert _is_message(entry.result), op


def test_every_handler_takes_its_ops_argument_message() -> None:
    for op, load in ROUTES.items():
        route = load()
        handler = route.handlers[op]
        assert typing.get_type_hints(handler)["args"] is OP_TABLE[op].args, (op, handler.__name__)
        assert route.messages[op] is OP_TABLE[op], op


@pytest.mark.parametrize("message", _messages(), ids=lambda kind: kind.__name__)
def test_every_message_round_trips_through_its_wire_form(message: type[Message]) -> None:
    full = sample(message)
    assert message.from_wire(full.to_wire()) == full
    bare = {name: getattr(full, name) for name in _required(message)}
    least = message(**bare, **LEAST.get(message, {}))
    assert message.from_wire(least.to_wire()) == least


def test_a_name_travels_in_its_text_form() -> None:
    wire = ExecArgs(argv=("ls",), cwd=ODD_NAME).to_wire()
    assert wire["cwd"] == '"/workspace/caf\\351 \\"q\\"\\n"'
    assert ExecArgs.from_wire(wire).cwd == ODD_NAME


# A value of the wrong kind for each kind of field.
WRONG = {str: 7, int: "7", float: "fast", bool: "yes", tuple: "a", dict: ["a"]}


def _wrong(kind: Any) -> Any:
    if _is_message(kind):
        return "not an object"
    return WRONG[typing.get_origin(kind) or kind]


@pytest.mark.parametrize("op", OPS)
def test_arguments_of_the_wrong_kind_are_invalid_argument_naming_the_field(op: str) -> None:
    message = OP_TABLE[op].args
    wire = sample(message).to_wire()
    for name, kind in _field_types(message).items():
        if kind is Any:
            continue
        with pytest.raises(OpError) as caught:
            message.from_wire({**wire, name: _wrong(kind)})
        assert caught.value.code == Code.INVALID_ARGUMENT, (name, caught.value.message)
        assert name in caught.value.message
        assert caught.value.hint
    with pytest.raises(OpError) as caught:
        message.from_wire(["not", "an", "object"])  # type: ignore[arg-type]
    assert caught.value.code == Code.INVALID_ARGUMENT
    for name in _required(message):
        with pytest.raises(OpError) as caught:
            message.from_wire({key: value for key, value in wire.items() if key != name})
        assert caught.value.code == Code.INVALID_ARGUMENT
        assert f"{name!r} is required" in caught.value.message


@pytest.mark.parametrize(
    ("op", "wire", "code"),
    [
        (Op.SHELL_OPEN, {"cols": 0}, Code.INVALID_ARGUMENT),
        (Op.SHELL_RESIZE, {"id": "s", "rows": 1001}, Code.INVALID_ARGUMENT),
        (Op.SHELL_SIGNAL, {"id": "s", "signal": "USR1"}, Code.INVALID_ARGUMENT),
        (Op.SHELL_READ, {"id": "s", "cursor": -1}, Code.INVALID_ARGUMENT),
        (Op.SHELL_READ, {"id": "s", "max_bytes": 64 * 1024 * 1024}, Code.READ_TOO_LARGE),
        (Op.SHELL_READ, {"id": "s", "wait_idle_ms": True}, Code.INVALID_ARGUMENT),
        (Op.FILE_READ, {"path": "a", "max_bytes": 64 * 1024 * 1024}, Code.READ_TOO_LARGE),
        (Op.FILE_WRITE, {"path": "a", "mode": 0o10000}, Code.INVALID_ARGUMENT),
        (Op.FILE_STAT, {"path": '"unclosed'}, Code.INVALID_ARGUMENT),
        (Op.FILE_LIST, {"cursor": "not a cursor"}, Code.INVALID_ARGUMENT),
        (Op.FILE_LIST, {"limit": 0}, Code.INVALID_ARGUMENT),
        (Op.EXEC, {"argv": ["ls"], "command": "ls"}, Code.INVALID_ARGUMENT),
        (Op.EXEC, {"command": "  "}, Code.INVALID_ARGUMENT),
        (Op.EXEC, {"argv": ["ls", "a\0b"]}, Code.INVALID_ARGUMENT),
        (Op.EXEC, {"argv": ["ls"], "timeout": 0}, Code.INVALID_ARGUMENT),
        (Op.SERVICE_START, {"name": "Web", "argv": ["x"]}, Code.INVALID_ARGUMENT),
        (Op.SERVICE_START, {"name": "web", "argv": ["x"], "restart": "sometimes"}, Code.INVALID_ARGUMENT),
        (Op.SERVICE_START, {"name": "web", "argv": ["x"], "ready": {"tcp": "1", "file": "f"}}, Code.INVALID_ARGUMENT),
        (Op.SERVICE_LOGS, {"name": "web", "stream": "stdin"}, Code.INVALID_ARGUMENT),
        (Op.SNAPSHOT_CREATE, {"name": "a b"}, Code.INVALID_ARGUMENT),
        (Op.DIFF, {"exclude": ["x" * 600]}, Code.INVALID_ARGUMENT),
        (Op.DIFF, {"max_bytes": 0}, Code.INVALID_ARGUMENT),
    ],
)
def test_arguments_out_of_bounds_are_refused_with_the_ops_code_and_a_hint(
    op: str, wire: dict[str, Any], code: str
) -> None:
    with pytest.raises(OpError) as caught:
        OP_TABLE[op].args.from_wire(wire)
    assert caught.value.code == code
    assert caught.value.hint


def test_absent_and_null_take_the_default_but_null_means_no_cap_for_exec_output() -> None:
    assert ExecArgs.from_wire({"argv": ["ls"]}).max_output_bytes == 4 * 1024 * 1024
    assert ExecArgs.from_wire({"argv": ["ls"], "max_output_bytes": None}).max_output_bytes is None
    assert ExecArgs.from_wire({"argv": ["ls"], "cwd": None}).cwd == "/workspace"


def test_a_message_is_frozen_and_compares_hashes_and_shows_by_value() -> None:
    ping = PingResult(pong=True, pid=7)

    with pytest.raises(dataclasses.FrozenInstanceError):
        ping.pid = 8  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del ping.pid  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ping.extra = 1  # type: ignore[attr-defined]
    assert ping == PingResult(pong=True, pid=7) and ping != PingResult(pong=True, pid=8)
    assert hash(ping) == hash(PingResult(pong=True, pid=7))
    assert repr(ping) == "PingResult(pong=True, pid=7)"
    assert dataclasses.replace(ping, pid=9).pid == 9 and ping.pid == 7
