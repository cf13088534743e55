"""`roost workspace exec -it` from a real terminal: the CLI runs as a separate process on a PTY
this test owns, as a human's terminal would run it."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import termios
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e

DEADLINE = 30.0


class Terminal:
    """The CLI running on a PTY of the given size; `output` collects everything it printed."""

    def __init__(self, roost: RoostCli, args: list[str], cols: int = 91, rows: int = 27) -> None:
        pid, fd = os.forkpty()
        if pid == 0:  # the child: size its terminal, then become the CLI on it
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(roost.argv()[0], roost.argv(*args), roost.env)
        self.pid, self.fd, self.output = pid, fd, b""

    def read_until(self, marker: bytes) -> None:
        deadline = time.monotonic() + DEADLINE
        while marker not in self.output:
            assert time.monotonic() < deadline, f"no {marker!r} in {self.output!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.fd, 4096)
                except OSError:  # the CLI ended and the PTY closed
                    assert marker in self.output, f"ended without {marker!r}: {self.output!r}"

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.kill(self.pid, signal.SIGWINCH)

    def exit_code(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            with_pid, status = os.waitpid(self.pid, os.WNOHANG)
            if with_pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.fd, 4096)
                except OSError:
                    pass
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"the CLI did not end: {self.output!r}")


def test_exec_it_gives_the_command_a_terminal_its_size_and_its_exit_code(roost: RoostCli) -> None:
    ws = roost.create()
    script = "test -t 0 && test -t 1 && echo TTY-YES; stty size; exit 5"
    term = Terminal(roost, ["workspace", "exec", "-it", ws, "bash", "-c", script])
    term.read_until(b"TTY-YES")
    term.read_until(b"27 91")
    assert term.exit_code() == 5


def test_exec_it_forwards_typing_and_resizes(roost: RoostCli) -> None:
    ws = roost.create()
    script = "read -r line; echo GOT-$line; trap 'stty size; exit 6' WINCH; echo WAIT; while :; do sleep 0.1; done"
    term = Terminal(roost, ["workspace", "exec", "-it", ws, "bash", "-c", script])
    term.type(b"hello\r")
    term.read_until(b"GOT-hello")
    term.read_until(b"WAIT")
    term.resize(100, 40)
    term.read_until(b"40 100")
    assert term.exit_code() == 6  # the trap's: the command saw SIGWINCH


def test_ctrl_c_reaches_the_command(roost: RoostCli) -> None:
    ws = roost.create()
    script = "trap 'echo CAUGHT-INT; exit 3' INT; echo READY; while :; do sleep 0.1; done"
    term = Terminal(roost, ["workspace", "exec", "-it", ws, "bash", "-c", script])
    term.read_until(b"READY")
    term.type(b"\x03")
    term.read_until(b"CAUGHT-INT")
    assert term.exit_code() == 3
    assert roost.json("workspace", "shell", "list", ws)["shells"][0]["state"] != "running"


def test_exec_t_without_i_does_not_read_stdin_and_i_alone_passes_it_whole(roost: RoostCli) -> None:
    ws = roost.create()
    term = Terminal(roost, ["workspace", "exec", "-t", ws, "sh", "-c", "test -t 1 && echo ON-TTY"])
    term.read_until(b"ON-TTY")
    assert term.exit_code() == 0
    proc = roost("workspace", "exec", "-i", ws, "cat", input="piped text\n", check_rc=0)
    assert proc.stdout == "piped text\n"


def test_exec_t_refuses_json(roost: RoostCli) -> None:
    ws = roost.create()
    roost.error(roost("workspace", "exec", "-t", ws, "--json", "true"), 2, "invalid_argument")
