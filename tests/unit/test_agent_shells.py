"""PTY shells in the guest agent, driven over the wire with the real `AgentClient`.

Most tests run the agent in process over a socketpair; the restart tests run
it as a real process on a state directory, kill or stop it, and start another.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from helpers import cmdline, listed, pid_alive, start_agent_process, wait_until
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.ops import OpTable
from roost.agent.server.connection import Connection, agent_info
from roost.agent.shells.handlers import registry
from roost.agent.shells.records import RUNNING, ShellRecord
from roost.agent.shells.registry import ShellRegistry, ShellSession
from roost.agent.state import AgentState
from roost.errors import RoostError
from roost.protocol import OpError
from roost.protocol.terminal_text import plain_text
from roost.rpc import AgentClient, connect_unix

IO_TIMEOUT = 10.0
GRACE = 0.5  # roost.agent.shells.registry.CLOSE_GRACE_S: what `close` allows a program after HUP


@dataclass
class InProcessAgent:
    root: Path
    state: Path
    agent: AgentState

    def connect(self) -> AgentClient:
        server_sock, client_sock = socket.socketpair()
        client_sock.settimeout(IO_TIMEOUT)
        connection = Connection(server_sock, OpTable(self.agent), agent_info())
        threading.Thread(target=connection.serve, name="test-agent", daemon=True).start()
        return AgentClient(client_sock, client_name="tests")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[InProcessAgent]:
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    # HOME inside the workspace: bash must not read the developer's own ~/.bashrc.
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(root)}
    agent = AgentState(WorkspacePaths(str(root)), str(tmp_path / "state"), str(tmp_path / "scratch"), base_env)
    started = InProcessAgent(root, tmp_path / "state", agent)
    yield started
    registry(agent).close_all()
    agent.inflight.cancel_all()
    assert agent.inflight.wait_idle(IO_TIMEOUT), "a call outlived its test"


@pytest.fixture
def client(agent: InProcessAgent) -> Iterator[AgentClient]:
    with agent.connect() as connected:
        yield connected


def _open(client: AgentClient, **args: Any) -> dict[str, Any]:
    """Open a shell and wait for its first prompt: what is typed before then may be lost."""
    record = client.call("shell.open", args).result
    _await_prompt(client, record["id"], 0)
    return record


def _await_prompt(client: AgentClient, shell_id: str, cursor: int) -> None:
    """Wait until the shell prints a fresh prompt after `cursor` (it is reading its next line)."""

    def prompted() -> bool:
        result, body = _read(client, shell_id, cursor, max_bytes=1 << 20)
        return result["state"] != "running" or plain_text(body).rstrip().endswith(("#", "$"))

    wait_until(prompted, what="a shell prompt")


def _write(client: AgentClient, shell_id: str, text: str) -> None:
    client.call("shell.write", {"id": shell_id}, upload=[text.encode() + b"\n"])


def _read(client: AgentClient, shell_id: str, cursor: int = 0, **args: Any) -> tuple[dict[str, Any], bytes]:
    reply = client.call("shell.read", {"id": shell_id, "cursor": cursor, **args})
    return reply.result, reply.body


def _read_until(client: AgentClient, shell_id: str, needle: str, cursor: int = 0, timeout: float = 5.0) -> str:
    """The shell's screen text from `cursor` once it shows `needle` (polled with a deadline)."""
    seen: list[str] = []

    def shows() -> bool:
        _, body = _read(client, shell_id, cursor, max_bytes=1 << 20)
        seen[:] = [plain_text(body)]
        return needle in seen[0]

    try:
        wait_until(shows, timeout=timeout, what=f"{needle!r} in the shell's output")
    except AssertionError:
        raise AssertionError(f"{needle!r} never appeared; the shell showed:\n{seen[0] if seen else ''}") from None
    return seen[0]


def _shells(client: AgentClient) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in listed(client, "shell.list")[0]}


def _code(client: AgentClient, op: str, args: dict[str, Any], **kw: Any) -> RoostError:
    with pytest.raises(RoostError) as info:
        client.call(op, args, **kw)
    return info.value


def _session_pids(sid: int) -> dict[int, list[str]]:
    """Live processes of session `sid` (a shell and all it started), with their argv."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            sid_of = os.getsid(int(entry))
        except OSError:
            continue
        if sid_of == sid and pid_alive(int(entry)):
            found[int(entry)] = cmdline(int(entry))
    return found


def _wait_for_program(sid: int, argv: list[str]) -> int:
    (pid,) = wait_until(
        lambda: [p for p, a in _session_pids(sid).items() if a == argv], what=f"{argv} to run in the shell"
    )
    return pid


# -- opening, reading, writing --------------------------------------------------------


def test_open_starts_a_running_shell_and_persists_its_record_outside_the_workspace(
    agent: InProcessAgent, client: AgentClient
) -> None:
    record = _open(client, cols=90, rows=20)
    assert record["id"].startswith("sh-")
    assert (record["state"], record["cwd"], record["cols"], record["rows"]) == ("running", "/workspace", 90, 20)
    assert record["command"] == ["bash", "-i"]
    stored = agent.state / "shells" / f"{record['id']}.json"
    assert json.loads(stored.read_text())["state"] == "running"
    assert agent.root not in stored.parents
    assert not any(p.suffix == ".json" for p in agent.root.rglob("*"))


def test_a_shell_takes_cwd_env_and_size_and_its_output_pages_by_cursor(client: AgentClient) -> None:
    shell = _open(client, cwd="/workspace/sub", env={"GREETING": "hello"}, cols=77, rows=11)["id"]
    _write(client, shell, 'echo "$GREETING-$((40+2))"; pwd; stty size')
    text = _read_until(client, shell, "11 77")
    assert "hello-42" in text
    assert "/ws/sub\n" in text  # the host path of /workspace/sub, seen by an in-process agent

    result, whole = _read(client, shell)
    first, head = _read(client, shell, max_bytes=10)
    assert (first["cursor"], first["next_cursor"], first["dropped"]) == (0, 10, 0)
    _, tail = _read(client, shell, first["next_cursor"], max_bytes=1 << 20)
    assert head + tail == whole
    assert result["next_cursor"] == result["end"] == len(whole)


def test_a_shell_outlives_the_connection_that_opened_it(agent: InProcessAgent) -> None:
    with agent.connect() as first:
        shell = _open(first)["id"]
        _write(first, shell, "export KEPT=yes")
    with agent.connect() as second:
        _write(second, shell, 'echo "kept-$KEPT"')
        assert "kept-yes\n" in _read_until(second, shell, "kept-yes\n")


def test_a_small_ring_drops_the_oldest_output_and_says_how_much(agent: InProcessAgent) -> None:
    # Made before the first shell op, so the agent's ops use this 4 KiB ring.
    agent.agent.part("shells", lambda: ShellRegistry(str(agent.state), ring_bytes=4096))
    with agent.connect() as client:
        shell = _open(client)["id"]
        _write(client, shell, "head -c 20000 /dev/zero | tr '\\0' x; echo; echo flood-$((1+1))")
        wait_until(lambda: _read(client, shell)[0]["end"] > 20000, what="the flood")
        _read_until(client, shell, "flood-2", cursor=_read(client, shell)[0]["end"] - 4000)
        result, body = _read(client, shell, 0, max_bytes=100)
    assert result["dropped"] > 16000
    assert result["cursor"] == result["dropped"] == result["end"] - 4096
    assert body == b"x" * 100


# -- how shells end ---------------------------------------------------------------------


def test_a_shell_whose_bash_exits_is_listed_as_exited_with_its_code(client: AgentClient) -> None:
    shell = _open(client)["id"]
    _write(client, shell, "echo bye-$((1+1)); exit 3")
    wait_until(lambda: _shells(client)[shell]["state"] == "exited", what="the shell to exit")
    record = _shells(client)[shell]
    assert (record["exit_code"], record["signal"]) == (3, None)
    assert record["closed_at"]

    result, body = _read(client, shell)  # its output stays readable
    assert (result["state"], result["exit_code"]) == ("exited", 3)
    assert "bye-2\n" in plain_text(body)
    for op, args in (("shell.write", {}), ("shell.signal", {"signal": "INT"})):
        upload = [b"x\n"] if op == "shell.write" else None
        assert _code(client, op, {"id": shell, **args}, upload=upload).code == "shell_not_running"

    closed = client.call("shell.close", {"id": shell}).result
    assert (closed["state"], closed["exit_code"]) == ("closed", 3)


def test_an_ended_shells_terminal_number_is_never_used_again(agent: InProcessAgent, client: AgentClient) -> None:
    shell = _open(client)["id"]
    session = registry(agent.agent).get(shell)
    number = session.master
    read_end, write_end = os.pipe()  # made first: neither end can take the terminal's number
    _write(client, shell, "exit 0")
    wait_until(lambda: _shells(client)[shell]["state"] == "exited", what="the shell to exit")
    try:
        os.fstat(number)
    except OSError:
        pass
    else:
        os.close(read_end)
        os.close(write_end)
        pytest.skip("something else took the terminal's old number meanwhile")
    os.dup2(write_end, number)  # a new file under the old number, as the next socket or terminal would get it
    try:
        with pytest.raises(OpError):
            session.write(b"must not arrive\n")  # past the handler's running check, as a racing write is
        assert session.foreground_group() == session.proc.pid
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):
            os.read(read_end, 64)  # nothing reached whatever holds the number now
    finally:
        for fd in (read_end, write_end, number):
            os.close(fd)


def test_list_shows_running_exited_and_closed_shells(client: AgentClient) -> None:
    running, exited, closed = (_open(client)["id"] for _ in range(3))
    _write(client, exited, "exit 3")
    client.call("shell.close", {"id": closed})
    wait_until(lambda: _shells(client)[exited]["state"] == "exited", what="the shell to exit")
    shells = _shells(client)
    assert {sid: s["state"] for sid, s in shells.items()} == {
        running: "running",
        exited: "exited",
        closed: "closed",
    }
    assert shells[running]["closed_at"] is None
    assert shells[closed]["closed_at"] is not None
    assert list(shells) == sorted(shells, key=lambda sid: (shells[sid]["created_at"], sid))


def test_close_kills_a_child_that_ignores_hup_once_the_grace_is_over(client: AgentClient) -> None:
    record = _open(client)
    _write(client, record["id"], "trap '' HUP; sleep 1000")
    sleeper = _wait_for_program(record["pid"], ["sleep", "1000"])
    started = time.monotonic()
    closed = client.call("shell.close", {"id": record["id"]}).result
    elapsed = time.monotonic() - started
    assert closed["state"] == "closed"
    assert GRACE <= elapsed < GRACE + 2.0  # slack for a loaded machine; far below any long timeout
    wait_until(lambda: not pid_alive(sleeper), timeout=1.0, what="the HUP-proof sleep to be killed")
    assert not _session_pids(record["pid"])


def test_close_of_a_shell_that_honours_hup_does_not_wait_out_the_grace(client: AgentClient) -> None:
    record = _open(client)
    started = time.monotonic()
    client.call("shell.close", {"id": record["id"]})
    assert time.monotonic() - started < GRACE
    assert not _session_pids(record["pid"])


def test_closing_twice_or_closing_an_unknown_shell_is_refused_with_a_code(client: AgentClient) -> None:
    shell = _open(client)["id"]
    client.call("shell.close", {"id": shell})
    assert _code(client, "shell.close", {"id": shell}).code == "shell_not_running"
    assert _code(client, "shell.close", {"id": "sh-00000000"}).code == "shell_not_found"


# -- signals and sizes --------------------------------------------------------------------


def test_interrupt_reaches_the_foreground_job_and_the_shell_stays_usable(client: AgentClient) -> None:
    record = _open(client)
    shell = record["id"]
    _write(client, shell, "sleep 100")
    sleeper = _wait_for_program(record["pid"], ["sleep", "100"])
    before, _ = _read(client, shell)
    job = os.getpgid(sleeper)
    sent = client.call("shell.signal", {"id": shell, "signal": "INT"}).result
    assert sent["signal"] == "INT"
    assert sent["process_group"] == job != record["pid"]  # the job, not bash
    wait_until(lambda: not pid_alive(sleeper), what="sleep to be interrupted")
    _await_prompt(client, shell, before["end"])
    _write(client, shell, "echo alive-$((1+1))")
    assert "alive-2\n" in _read_until(client, shell, "alive-2\n", cursor=before["end"])
    assert _shells(client)[shell]["state"] == "running"


def test_a_signal_for_a_job_that_ended_meanwhile_is_not_an_error(
    client: AgentClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = _open(client)["id"]

    def job_already_gone(pgid: int, sig: int) -> None:
        raise ProcessLookupError(pgid)

    with monkeypatch.context() as patched:  # undone before the fixture closes the shell
        patched.setattr(os, "killpg", job_already_gone)
        sent = client.call("shell.signal", {"id": shell, "signal": "TERM"}).result
    assert sent["signal"] == "TERM"
    assert _shells(client)[shell]["state"] == "running"


@pytest.mark.parametrize("name", ["STOP", "USR1", "9", ""])
def test_unknown_signal_names_are_invalid_argument_with_the_choices_in_the_hint(client: AgentClient, name: str) -> None:
    shell = _open(client)["id"]
    error = _code(client, "shell.signal", {"id": shell, "signal": name})
    assert error.code == "invalid_argument"
    assert "INT" in error.hint and "KILL" in error.hint


def test_resize_changes_the_terminal_and_the_record(client: AgentClient) -> None:
    shell = _open(client, cols=120, rows=32)["id"]
    assert client.call("shell.resize", {"id": shell, "cols": 100, "rows": 40}).result == {
        "id": shell,
        "cols": 100,
        "rows": 40,
    }
    _write(client, shell, "stty size")
    _read_until(client, shell, "40 100\n")
    assert (_shells(client)[shell]["cols"], _shells(client)[shell]["rows"]) == (100, 40)


@pytest.mark.parametrize(
    ("op", "size"), [("shell.open", {"cols": 0}), ("shell.open", {"rows": 1001}), ("shell.resize", {"cols": 5000})]
)
def test_sizes_out_of_range_are_invalid_argument_and_change_nothing(
    client: AgentClient, op: str, size: dict[str, int]
) -> None:
    shell = _open(client, cols=80, rows=24)["id"]
    args = {"id": shell, **size} if op == "shell.resize" else size
    assert _code(client, op, args).code == "invalid_argument"
    assert list(_shells(client)) == [shell]
    assert (_shells(client)[shell]["cols"], _shells(client)[shell]["rows"]) == (80, 24)


# -- other refusals -----------------------------------------------------------------------


def test_an_unknown_shell_is_shell_not_found_with_a_hint(client: AgentClient) -> None:
    for op in ("shell.read", "shell.resize", "shell.signal"):
        error = _code(client, op, {"id": "sh-00000000"})
        assert error.code == "shell_not_found"
        assert "shell list" in error.hint


def test_reading_more_than_the_per_call_limit_is_read_too_large(client: AgentClient) -> None:
    shell = _open(client)["id"]
    assert _code(client, "shell.read", {"id": shell, "max_bytes": 64 << 20}).code == "read_too_large"


@pytest.mark.parametrize(
    ("cwd", "code"), [("/workspace/missing", "path_not_found"), ("/etc", "path_outside_workspace")]
)
def test_open_in_a_bad_directory_is_refused(client: AgentClient, cwd: str, code: str) -> None:
    assert _code(client, "shell.open", {"cwd": cwd}).code == code
    assert _shells(client) == {}


def test_attach_streams_output_until_cancelled(client: AgentClient) -> None:
    shell = _open(client)["id"]
    streamed: list[bytes] = []
    started: list[int] = []
    done: list[dict[str, Any]] = []

    def attach() -> None:
        reply = client.call(
            "shell.attach",
            {"id": shell, "cursor": 0},
            on_data=lambda _ch, data: streamed.append(data),
            on_start=started.append,
        )
        done.append(reply.result)

    watcher = threading.Thread(target=attach)
    watcher.start()
    try:
        wait_until(lambda: started, what="the attach call to start")
        _write(client, shell, "echo seen-$((1+1))")
        wait_until(lambda: "seen-2\n" in plain_text(b"".join(streamed)), what="the echo to be streamed")
    finally:
        if started:
            client.cancel(started[0])
        watcher.join(IO_TIMEOUT)
    assert not watcher.is_alive()
    assert done and done[0]["state"] == "running"
    assert done[0]["next_cursor"] == len(b"".join(streamed))


def test_attach_ends_by_itself_when_the_shell_exits(client: AgentClient) -> None:
    shell = _open(client)["id"]
    _write(client, shell, "exit 5")
    reply = client.call("shell.attach", {"id": shell, "cursor": 0})
    assert (reply.result["state"], reply.result["exit_code"]) == ("exited", 5)


# -- across agent restarts ----------------------------------------------------------------


@pytest.mark.parametrize(("stop", "left_as"), [("shutdown", "closed"), ("sigkill", "lost")])
def test_after_an_agent_restart_its_old_shells_are_lost_not_errors(
    tmp_path: Path, agent_processes: list[subprocess.Popen[bytes]], stop: str, left_as: str
) -> None:
    """A clean shutdown closes its shells; a crash leaves them lost. Neither is an error later."""
    first, sock = start_agent_process(tmp_path, "first")
    agent_processes.append(first)
    with connect_unix(sock, timeout=IO_TIMEOUT) as client:
        old = _open(client)
        done = _open(client)["id"]
        client.call("shell.close", {"id": done})
        if stop == "shutdown":
            client.call("shutdown")
        else:
            first.kill()
    first.wait(IO_TIMEOUT)
    # Its terminal hung up with the agent: bash got SIGHUP and is gone too.
    wait_until(lambda: not pid_alive(old["pid"]), what="the old agent's bash to end")

    second, sock = start_agent_process(tmp_path, "second")
    agent_processes.append(second)
    with connect_unix(sock, timeout=IO_TIMEOUT) as client:
        shells = _shells(client)
        assert shells[old["id"]]["state"] == left_as
        assert shells[old["id"]]["closed_at"]
        assert shells[done]["state"] == "closed"
        for op in ("shell.read", "shell.resize"):
            error = _code(client, op, {"id": old["id"]})
            assert error.code == "shell_not_running"
            assert "shell open" in error.hint
        fresh = _open(client)["id"]  # the new agent's own shells work
        _write(client, fresh, "echo new-$((1+1))")
        _read_until(client, fresh, "new-2\n")
        client.call("shell.close", {"id": fresh})
    assert {s: r["state"] for s, r in json_records(tmp_path / "state").items()} == {
        old["id"]: left_as,
        done: "closed",
        fresh: "closed",
    }


def json_records(state: Path) -> dict[str, dict[str, Any]]:
    records = (json.loads(p.read_text()) for p in (state / "shells").glob("*.json"))
    return {r["id"]: r for r in records}


def test_interrupt_at_an_idle_prompt_goes_to_the_shell_group_and_leaves_it_running(client: AgentClient) -> None:
    record = _open(client)
    before, _ = _read(client, record["id"])
    sent = client.call("shell.signal", {"id": record["id"], "signal": "sigint"}).result  # any case, SIG prefix ok
    assert sent["process_group"] == record["pid"]  # bash leads its own group, never the agent's
    _await_prompt(client, record["id"], before["end"])
    _write(client, record["id"], "echo still-$((1+1))")
    _read_until(client, record["id"], "still-2\n")


def test_a_shell_can_be_named_by_a_unique_prefix_of_its_id(client: AgentClient) -> None:
    record = _open(client)
    prefix = record["id"].removeprefix("sh-")[:5]

    _write(client, prefix, "echo by-prefix")
    _read_until(client, record["id"], "\nby-prefix\n")
    closed = client.call("shell.close", {"id": "sh-" + prefix}).result

    assert closed["id"] == record["id"]
    assert _code(client, "shell.read", {"id": "sh-zzzzzzzz"}).code == "shell_not_found"


class _Started:
    """A stand-in for the shell's process: only its pid is looked at."""

    pid = 424242


def test_a_shell_with_no_foreground_job_yet_counts_as_its_own_foreground_group() -> None:
    # A terminal no session holds yet: the kernel names foreground group 0, the caller's own group.
    master, slave = os.openpty()
    record = ShellRecord("sh-test", ["sh"], "/workspace", 80, 24, RUNNING, "2026-01-01T00:00:00Z")
    session = ShellSession(record, cast("subprocess.Popen[bytes]", _Started()), master, 1024)
    try:
        assert os.tcgetpgrp(master) == 0
        assert session.foreground_group() == _Started.pid
    finally:
        session.ring.close()
        os.close(master)
        os.close(slave)


# -- waiting for a command's end ------------------------------------------------------


def _run(client: AgentClient, shell_id: str, line: str, **wait: Any) -> tuple[dict[str, Any], bytes]:
    cursor = client.call("shell.write", {"id": shell_id}, upload=[line.encode() + b"\n"]).result["cursor"]
    return _read(client, shell_id, cursor, max_bytes=1 << 20, until_command_done=True, timeout_ms=30_000, **wait)


@pytest.mark.parametrize("command", [None, ["sh", "-i"]], ids=["bash", "sh"])
def test_a_command_wait_reports_the_status_and_no_mark_reaches_the_output(
    client: AgentClient, command: list[str] | None
) -> None:
    shell = _open(client, **({} if command is None else {"command": command}))["id"]
    result, body = _run(client, shell, "echo out-$((6*7)); (exit 3)")
    assert (result["ended_by"], result["exit_code"], result["state"]) == ("command_done", 3, "running")
    assert b"out-42" in body
    everything = _read(client, shell, 0, max_bytes=1 << 20)[1]
    assert b"6973;roost" not in everything  # taken out of the raw output, not only the plain text
    result, body = _run(client, shell, "env | grep -c -e 6973 -e roost-shell-rc")
    assert (result["exit_code"], plain_text(body).splitlines()[-1]) == (1, "0")  # nothing exported to children


def test_a_shell_without_marks_refuses_a_command_wait_and_bad_waits_are_refused(client: AgentClient) -> None:
    cat = client.call("shell.open", {"command": ["cat"]}).result["id"]
    refused = _code(client, "shell.read", {"id": cat, "until_command_done": True})
    assert refused.code == "invalid_argument" and "until_pattern" in (refused.hint or "")
    bash = _open(client)["id"]
    bad = _code(client, "shell.read", {"id": bash, "until_pattern": "(unclosed"})
    assert bad.code == "invalid_argument" and "regular expression" in bad.message and bad.hint
    both = _code(client, "shell.read", {"id": bash, "until_pattern": "x", "until_command_done": True})
    assert both.code == "invalid_argument"


def test_a_prompt_that_comes_back_before_the_write_returns_still_ends_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    master, slave = os.openpty()
    record = ShellRecord("sh-test", ["bash", "-i"], "/workspace", 80, 24, RUNNING, "2026-01-01T00:00:00Z")
    session = ShellSession(record, cast("subprocess.Popen[bytes]", _Started()), master, 1024)
    real_write = os.write

    def write_then_prompt(fd: int, data: Any) -> int:
        written = real_write(fd, data)
        session.commands.prompted(0)  # `true` ran, and the reader took its mark, before os.write returned
        return written

    monkeypatch.setattr("roost.agent.shells.registry.os.write", write_then_prompt)
    try:
        session.write(b"true\n")
        assert (session.commands.running, session.commands.status) == (False, 0)
    finally:
        session.ring.close()
        os.close(master)
        os.close(slave)
