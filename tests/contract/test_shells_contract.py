"""PTY shells as every backend offers them, checked through the SDK's `ws.shells` only.

Shell output is waited for by polling reads with a deadline; what is typed
is only typed once the shell shows a prompt, as a person would.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from helpers import cmdline, pid_alive, pids_with_env, wait_until
from roost import RoostError, Workspace
from roost.backends.processes import WORKSPACE_MARKER
from roost.models import ShellInfo, ShellOutput

pytestmark = pytest.mark.contract

RING_BYTES = 4 * 1024 * 1024  # what the agent keeps per shell
GRACE = 0.5  # what `close` allows a program after HUP before it KILLs
ESCAPE = re.compile(r"\x1b")


def _read_all(ws: Workspace, shell: str, cursor: int = 0, **kw: Any) -> ShellOutput:
    return ws.shells.read(shell, cursor=cursor, max_bytes=1 << 20, **kw)


def _until(ws: Workspace, shell: str, needle: str, cursor: int = 0, timeout: float = 10.0) -> str:
    """The shell's plain text from `cursor` once it shows `needle`."""
    seen = [""]

    def shows() -> bool:
        seen[0] = _read_all(ws, shell, cursor, plain=True).data
        return needle in seen[0]

    try:
        wait_until(shows, timeout=timeout, what=repr(needle))
    except AssertionError:
        raise AssertionError(f"{needle!r} never appeared; the shell showed:\n{seen[0]}") from None
    return seen[0]


def _await_prompt(ws: Workspace, shell: str, cursor: int) -> None:
    """Wait for a fresh prompt after `cursor`: the shell is reading its next line."""

    def prompted() -> bool:
        out = _read_all(ws, shell, cursor, plain=True)
        return out.state != "running" or out.data.rstrip().endswith(("#", "$"))

    wait_until(prompted, timeout=10.0, what="a shell prompt")


def _open(ws: Workspace, **kw: Any) -> ShellInfo:
    shell = ws.shells.open(**kw)
    _await_prompt(ws, shell.id, 0)
    return shell


def _end(ws: Workspace, shell: str) -> int:
    return ws.shells.read(shell, max_bytes=1).end


def _programs(ws: Workspace, argv: list[str]) -> list[int]:
    """Live processes of the workspace running exactly `argv`."""
    return [pid for pid in pids_with_env(WORKSPACE_MARKER, ws.id) if cmdline(pid) == argv]


def _state(ws: Workspace, shell: str) -> ShellInfo:
    (info,) = (s for s in ws.shells.list() if s.id == shell)
    return info


# -- a session that keeps its state --------------------------------------------------------


def test_a_shell_keeps_its_directory_and_variables_between_calls(workspace: Workspace) -> None:
    workspace.files.write("sub/marker.txt", "here\n")
    shell = _open(workspace).id
    mark = _end(workspace, shell)
    workspace.shells.write(shell, "cd sub && export FOO=bar")
    _await_prompt(workspace, shell, mark)
    mark = _end(workspace, shell)
    workspace.shells.write(shell, 'echo "FOO=$FOO"; pwd; cat marker.txt')
    text = _until(workspace, shell, "here\n", cursor=mark)
    assert "FOO=bar\n" in text
    assert re.search(r"^/\S*workspace/sub$", text, re.M), text


def test_open_takes_cwd_env_and_size(workspace: Workspace) -> None:
    workspace.files.write("deep/er/keep", "")
    shell = _open(workspace, cwd="/workspace/deep/er", env={"GREETING": "hello"}, cols=91, rows=19)
    assert (shell.cwd, shell.cols, shell.rows, shell.state) == ("/workspace/deep/er", 91, 19, "running")
    workspace.shells.write(shell.id, 'pwd; stty size; echo "$GREETING-$((40+2))"')
    text = _until(workspace, shell.id, "hello-42\n")
    assert "19 91\n" in text
    assert re.search(r"^/\S*workspace/deep/er$", text, re.M), text


def test_a_python_repl_is_driven_by_write_and_read(workspace: Workspace) -> None:
    shell = _open(workspace).id
    workspace.shells.write(shell, "python3 -q")
    _until(workspace, shell, ">>>")
    mark = _end(workspace, shell)
    workspace.shells.write(shell, "1+41")
    assert "\n42\n" in _until(workspace, shell, "\n42\n", cursor=mark)
    _until(workspace, shell, ">>>", cursor=mark)
    workspace.shells.write(shell, "exit()")
    _await_prompt(workspace, shell, mark)
    mark = _end(workspace, shell)
    workspace.shells.write(shell, "echo back-$((1+1))")
    _until(workspace, shell, "back-2\n", cursor=mark)


# -- signals and sizes -------------------------------------------------------------------


def test_interrupt_stops_the_foreground_program_and_the_shell_stays_usable(workspace: Workspace) -> None:
    shell = _open(workspace).id
    workspace.shells.write(shell, "sleep 100")
    (sleeper,) = wait_until(lambda: _programs(workspace, ["sleep", "100"]), what="sleep to start")
    mark = _end(workspace, shell)
    assert workspace.shells.signal(shell, "INT") == "INT"
    wait_until(lambda: not pid_alive(sleeper), what="sleep to be interrupted")
    assert not _programs(workspace, ["sleep", "100"])
    _await_prompt(workspace, shell, mark)
    workspace.shells.write(shell, "echo after-$((1+1))")
    _until(workspace, shell, "after-2\n", cursor=mark)
    assert _state(workspace, shell).state == "running"


# os.write in the handler: a SIGWINCH may land while print() still holds stdout's buffer.
_WINCH_PROGRAM = (
    'python3 -c "import os, signal;'
    " signal.signal(signal.SIGWINCH, lambda *a: os.write(1, b'SIZE %d %d\\n' % os.get_terminal_size()));"
    " print('RE' + 'ADY', flush=True); signal.pause()\""
)


def test_resize_is_seen_by_stty_and_reaches_the_program_as_sigwinch(workspace: Workspace) -> None:
    shell = _open(workspace, cols=120, rows=32).id
    mark = _end(workspace, shell)
    workspace.shells.write(shell, "stty size")
    _until(workspace, shell, "32 120\n", cursor=mark)
    _await_prompt(workspace, shell, mark)
    workspace.shells.write(shell, _WINCH_PROGRAM)
    _until(workspace, shell, "READY\n")
    workspace.shells.resize(shell, 100, 40)
    assert "SIZE 100 40\n" in _until(workspace, shell, "SIZE 100 40\n")
    assert (_state(workspace, shell).cols, _state(workspace, shell).rows) == (100, 40)

    mark = _end(workspace, shell)
    workspace.shells.signal(shell, "INT")  # end the program; the shell takes over the new size
    _await_prompt(workspace, shell, mark)
    # A leading space: bash, taking the terminal back from a program a signal ended, can drop the
    # first byte typed right after its prompt (as it would a person's); the command must survive that.
    workspace.shells.write(shell, " stty size")
    _until(workspace, shell, "40 100\n", cursor=mark)


# -- reading output -------------------------------------------------------------------------


def test_plain_read_strips_the_colours_a_raw_read_keeps(workspace: Workspace) -> None:
    workspace.files.write("adir/file.txt", "x")
    shell = _open(workspace).id
    mark = _end(workspace, shell)
    workspace.shells.write(shell, "ls --color=always; echo listed-$((1+1))")
    plain = _until(workspace, shell, "listed-2\n", cursor=mark)
    raw = workspace.shells.read(shell, cursor=mark, max_bytes=1 << 20)
    assert "\x1b[" in raw.data and "adir" in raw.data
    assert not ESCAPE.search(plain) and "\r" not in plain
    assert re.search(r"^adir\s*$", plain, re.M), plain
    assert raw.plain is False and workspace.shells.read(shell, cursor=mark, plain=True).plain is True


def test_a_flood_of_output_drops_old_bytes_and_says_so(workspace: Workspace) -> None:
    shell = _open(workspace).id
    flood = 6_000_000
    workspace.shells.write(shell, f"head -c {flood} /dev/zero | tr '\\0' x; echo; echo flood-$((1+1))")
    wait_until(lambda: _end(workspace, shell) > flood, timeout=20.0, what="the flood to arrive")
    _until(workspace, shell, "flood-2\n", cursor=_end(workspace, shell) - 200)

    first = workspace.shells.read(shell, cursor=0, max_bytes=4096)
    assert first.dropped > 0
    assert first.cursor == first.dropped == first.end - RING_BYTES
    assert first.next_cursor == first.cursor + 4096
    assert first.data == "x" * 4096
    following = workspace.shells.read(shell, cursor=first.next_cursor, max_bytes=10)
    assert (following.dropped, following.cursor, following.data) == (0, first.next_cursor, "x" * 10)


def test_a_read_waiting_for_idle_returns_once_the_output_is_quiet(workspace: Workspace) -> None:
    shell = _open(workspace).id
    mark = _end(workspace, shell)
    workspace.shells.write(shell, "for i in 1 2 3; do echo tick-$i; sleep 0.02; done")
    out = workspace.shells.read(shell, cursor=mark, plain=True, wait_for_idle_ms=200, timeout_ms=5000)
    assert "tick-3\n" in out.data and out.ended_by == "idle"
    assert out.next_cursor > mark


# -- waiting for a command, a pattern, or the shell's end ---------------------------------------
# Every wait below would run into its generous timeout if it did not end as it should: the tests
# assert on what ended it and on the output, never on how fast.

LONG_MS = 60_000


def test_continuous_output_ends_by_command_done_with_exit_0(workspace: Workspace) -> None:
    shell = _open(workspace).id
    out = workspace.shells.run(shell, "yes roost | head -c 2000000; echo; echo done-$((40+2))", timeout_ms=LONG_MS)
    assert (out.ended_by, out.exit_code, out.state) == ("command_done", 0, "running")
    assert out.end - out.cursor > 2_000_000 and out.next_cursor == out.cursor + 65536  # the first page
    assert "roost\r\nroost" in out.data
    assert "done-42" in workspace.shells.read(shell, cursor=out.end - 300, plain=True).data
    assert "6973;roost" not in workspace.shells.read(shell, cursor=0, max_bytes=1 << 20).data  # no mark, raw


def test_a_command_that_ends_at_once_is_seen_to_end_every_time(workspace: Workspace) -> None:
    shell = workspace.shells.open().id  # no wait for a prompt: open returns once there is one
    for _ in range(20):  # its prompt mark may come back before the write call has returned
        out = workspace.shells.run(shell, "true", timeout_ms=LONG_MS)
        assert (out.ended_by, out.exit_code) == ("command_done", 0)


def test_a_command_printing_for_a_while_is_waited_for_to_its_end(workspace: Workspace) -> None:
    shell = _open(workspace).id
    out = workspace.shells.write(
        shell,
        "for i in $(seq 1 40); do echo line-$i; sleep 0.01; done",
        and_wait=True,
        timeout_ms=LONG_MS,
        plain=True,
    )
    assert (out.ended_by, out.exit_code) == ("command_done", 0)
    assert "line-40\n" in out.data


def test_a_silent_command_is_waited_for_and_its_status_reported(workspace: Workspace) -> None:
    shell = _open(workspace).id
    out = workspace.shells.run(shell, "sleep 0.6; false", timeout_ms=LONG_MS, plain=True)
    assert (out.ended_by, out.exit_code) == ("command_done", 1)
    assert out.data == "sleep 0.6; false\n"  # its echo, up to where its prompt begins
    again = workspace.shells.read(shell, cursor=out.next_cursor, until_command_done=True, timeout_ms=LONG_MS)
    assert (again.ended_by, again.exit_code) == ("command_done", 1)  # nothing runs: at once, the last status


def test_a_command_that_prints_a_fake_mark_does_not_end_the_wait(workspace: Workspace) -> None:
    shell = _open(workspace).id
    fake = "printf '\\033]6973;roost;0123456789abcdef;0\\007'"
    out = workspace.shells.run(shell, f"{fake}; sleep 0.3; echo after-$((1+1)); (exit 4)", timeout_ms=LONG_MS)
    assert (out.ended_by, out.exit_code) == ("command_done", 4)
    assert "after-2" in out.data


def test_a_read_waits_for_a_pattern_in_the_plain_text(workspace: Workspace) -> None:
    shell = _open(workspace).id
    cursor = _end(workspace, shell)
    # One job prints and then sleeps (exec), so the INT below finds it in the foreground: a list would
    # leave a gap between printf and sleep where the shell itself holds the terminal.
    workspace.shells.write(
        shell, "sh -c 'sleep 0.3; printf \"\\033[1mREADY\\033[0m on %s\\n\" port-$((8000+80)); exec sleep 100'"
    )
    out = workspace.shells.read(
        shell, cursor=cursor, until_pattern=r"^READY on port-\d+$", timeout_ms=LONG_MS, plain=True
    )
    assert out.ended_by == "pattern"
    assert "READY on port-8080" in out.data
    workspace.shells.signal(shell, "INT")
    assert workspace.shells.read(shell, until_command_done=True, timeout_ms=LONG_MS).exit_code == 130


def test_a_wait_that_times_out_says_so_and_returns_the_output_so_far(workspace: Workspace) -> None:
    shell = _open(workspace).id
    out = workspace.shells.run(shell, "echo started-$((1+1)); sleep 100", timeout_ms=300, plain=True)
    assert (out.ended_by, out.state, out.exit_code) == ("timeout", "running", None)
    assert "started-2\n" in out.data
    workspace.shells.signal(shell, "INT")
    assert workspace.shells.read(shell, until_command_done=True, timeout_ms=LONG_MS).ended_by == "command_done"


def test_exit_ends_the_wait_as_shell_exited_with_the_shells_code(workspace: Workspace) -> None:
    shell = _open(workspace).id
    out = workspace.shells.run(shell, "exit 3", timeout_ms=LONG_MS)
    assert (out.ended_by, out.state, out.exit_code) == ("shell_exited", "exited", 3)


def test_bad_waits_are_invalid_arguments_with_hints(workspace: Workspace) -> None:
    shell = _open(workspace).id
    for kw in ({"until_pattern": "([unclosed"}, {"until_pattern": "x", "until_command_done": True}):
        with pytest.raises(RoostError) as info:
            workspace.shells.read(shell, **kw)
        assert info.value.code == "invalid_argument" and info.value.hint


def test_attach_streams_output_until_stopped(workspace: Workspace) -> None:
    shell = _open(workspace).id
    mark = _end(workspace, shell)
    streamed: list[bytes] = []
    stop = threading.Event()
    ended: list[ShellInfo] = []
    watcher = threading.Thread(
        target=lambda: ended.append(workspace.shells.attach(shell, streamed.append, stop, cursor=mark))
    )
    watcher.start()
    try:
        workspace.shells.write(shell, "echo attached-$((1+1))")
        _until(workspace, shell, "attached-2\n", cursor=mark)
        wait_until(lambda: b"attached-2" in b"".join(streamed), what="the output to be streamed")
    finally:
        stop.set()
        watcher.join(10.0)
    assert not watcher.is_alive()
    assert ended and ended[0].state == "running"


# -- how shells end --------------------------------------------------------------------------


def test_close_ends_a_child_that_ignores_hup_within_the_grace(workspace: Workspace) -> None:
    shell = _open(workspace).id
    workspace.shells.write(shell, "trap '' HUP; sleep 1000")
    (sleeper,) = wait_until(lambda: _programs(workspace, ["sleep", "1000"]), what="sleep to start")
    started = time.monotonic()
    closed = workspace.shells.close(shell)
    elapsed = time.monotonic() - started
    assert closed.state == "closed"
    assert elapsed < 1.0, f"close took {elapsed:.2f}s"
    wait_until(lambda: not pid_alive(sleeper), timeout=1.0, what="the HUP-proof sleep to die")
    assert not _programs(workspace, ["sleep", "1000"])


def test_list_shows_running_exited_and_closed_shells_with_exit_codes(workspace: Workspace) -> None:
    running = _open(workspace).id
    exited = _open(workspace).id
    closed = _open(workspace).id
    workspace.shells.write(exited, "exit 3")
    assert workspace.shells.close(closed).state == "closed"
    wait_until(lambda: _state(workspace, exited).state == "exited", what="the shell to exit")
    shells = {s.id: s for s in workspace.shells.list()}
    assert {sid: s.state for sid, s in shells.items()} == {running: "running", exited: "exited", closed: "closed"}
    assert shells[exited].exit_code == 3
    assert shells[exited].closed_at and shells[closed].closed_at
    assert shells[running].exit_code is None and shells[running].closed_at is None
    out = workspace.shells.read(exited)  # an exited shell's output can still be read
    assert (out.state, out.exit_code) == ("exited", 3)


def test_shell_errors_carry_stable_codes(workspace: Workspace) -> None:
    shell = _open(workspace).id
    gone = _open(workspace).id
    workspace.shells.close(gone)

    def code(call: Any, *args: Any, **kw: Any) -> str:
        with pytest.raises(RoostError) as info:
            call(*args, **kw)
        return info.value.code

    assert code(workspace.shells.read, "sh-00000000") == "shell_not_found"
    with pytest.raises(RoostError) as unknown:
        workspace.shells.read("sh-00000000")
    assert unknown.value.remedy is not None
    assert (unknown.value.remedy.operation, unknown.value.remedy.workspace) == ("shell_list", workspace.id)
    assert code(workspace.shells.write, "sh-00000000", "true") == "shell_not_found"
    assert code(workspace.shells.write, gone, "true") == "shell_not_running"
    assert code(workspace.shells.signal, gone, "INT") == "shell_not_running"
    assert code(workspace.shells.signal, shell, "BOGUS") == "invalid_argument"
    assert code(workspace.shells.resize, shell, 0, 10) == "invalid_argument"
    assert code(workspace.shells.resize, shell, 10, 1001) == "invalid_argument"
    assert code(workspace.shells.open, cols=0) == "invalid_argument"
    assert code(workspace.shells.open, cwd="/workspace/nope") == "path_not_found"
    assert code(workspace.shells.read, shell, max_bytes=64 << 20) == "read_too_large"
    assert {s.id for s in workspace.shells.list()} == {shell, gone}
