"""`roost workspace shell ...`: one shell driven by many separate CLI processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import RoostCli, backends_here, delete_leftovers, home_with_shared_images

from helpers import cmdline, pid_alive, pids_with_env, wait_until
from roost.backends.processes import WORKSPACE_MARKER

pytestmark = pytest.mark.e2e

SHELL_ID = re.compile(r"sh-[0-9a-f]+")


def _shell(cli: RoostCli, *args: str, check_rc: int | None = 0) -> str:
    return cli("workspace", "shell", *args, check_rc=check_rc).stdout


def _open(cli: RoostCli, ws: str, *args: str) -> str:
    out = _shell(cli, "open", ws, "--id-only", *args)
    assert SHELL_ID.fullmatch(out.rstrip("\n")), out
    return out.strip()


def _read(cli: RoostCli, ws: str, sh: str, cursor: int = 0) -> dict[str, Any]:
    document: dict[str, Any] = cli.json("workspace", "shell", "read", ws, sh, "--plain", "--cursor", str(cursor))
    return document


def _screen_until(cli: RoostCli, ws: str, sh: str, needle: str, cursor: int = 0) -> str:
    seen = [""]

    def shows() -> bool:
        seen[0] = _read(cli, ws, sh, cursor)["data"]
        return needle in seen[0]

    try:
        wait_until(shows, timeout=10.0, interval=0.02, what=repr(needle))
    except AssertionError:
        raise AssertionError(f"{needle!r} never appeared; the shell showed:\n{seen[0]}") from None
    return seen[0]


def _shells(cli: RoostCli, ws: str) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in cli.json("workspace", "shell", "list", ws)["shells"]}


def test_a_session_spans_separate_cli_processes(shared_workspace: str, module_roost: RoostCli) -> None:
    cli, ws = module_roost, shared_workspace
    sh = _open(cli, ws)
    assert _shell(cli, "write", ws, sh, "--input", "cd sub && export FOO=bar") == ""
    # A later process finds the same shell, still in sub/ with FOO set.
    _shell(cli, "write", ws, sh, "--input", "echo $FOO; pwd")

    def shows_both() -> str | None:
        proc = cli("workspace", "shell", "read", ws, sh, "--plain", "--wait-for-idle-ms", "300", check_rc=0)
        return proc.stdout if "\nbar\n" in proc.stdout and re.search(r"/sub$", proc.stdout, re.M) else None

    screen = wait_until(shows_both, timeout=10.0, what="bar and the sub dir on the screen")
    assert "\x1b" not in screen and "\r" not in screen


def test_write_takes_stdin_or_input_and_read_pages_by_cursor(shared_workspace: str, module_roost: RoostCli) -> None:
    cli, ws = module_roost, shared_workspace
    sh = _open(cli, ws)
    written = cli.json("workspace", "shell", "write", ws, sh, "--stdin", input="echo piped-$((1+1))\n")
    assert written == {"id": sh, "written": len("echo piped-$((1+1))\n")}
    _shell(cli, "write", ws, sh, "--input", "echo typed-", "--no-newline")
    _shell(cli, "write", ws, sh, "--input", "$((2+1))")  # finishes the same line
    screen = _screen_until(cli, ws, sh, "typed-3\n")
    assert "piped-2\n" in screen

    proc = cli("workspace", "shell", "read", ws, sh, "--max-bytes", "5", check_rc=0)
    assert len(proc.stdout.encode()) == 5
    assert "roost: next cursor 5 (shell running)" in proc.stderr
    rest = _read(cli, ws, sh, cursor=5)
    assert (rest["cursor"], rest["dropped"], rest["plain"]) == (5, 0, True)
    assert rest["next_cursor"] == rest["end"] > 5


def test_signal_interrupts_the_foreground_program_and_resize_reaches_stty(
    shared_workspace: str, module_roost: RoostCli
) -> None:
    cli, ws = module_roost, shared_workspace
    sh = _open(cli, ws, "--cols", "120", "--rows", "32")
    _shell(cli, "write", ws, sh, "--input", "sleep 100")

    def sleeper() -> list[int]:
        return [p for p in pids_with_env(WORKSPACE_MARKER, ws) if cmdline(p) == ["sleep", "100"]]

    (pid,) = wait_until(sleeper, what="sleep to start")
    assert cli.json("workspace", "shell", "signal", ws, sh) == {"id": sh, "signal": "INT"}
    wait_until(lambda: not pid_alive(pid), what="sleep to be interrupted")
    # Type only once bash has drawn its next prompt: keys sent while it handles the signal may be lost.
    wait_until(lambda: _read(cli, ws, sh)["data"].rstrip().endswith(("#", "$")), what="a new prompt")

    resized = cli.json("workspace", "shell", "resize", ws, sh, "--cols", "100", "--rows", "40")
    assert resized == {"id": sh, "cols": 100, "rows": 40}
    _shell(cli, "write", ws, sh, "--input", "stty size")
    _screen_until(cli, ws, sh, "40 100\n")


def test_list_shows_running_exited_and_closed_shells(shared_workspace: str, module_roost: RoostCli) -> None:
    cli, ws = module_roost, shared_workspace
    running, exited, closed = (_open(cli, ws) for _ in range(3))
    _shell(cli, "write", ws, exited, "--input", "exit 3")
    assert _shell(cli, "close", ws, closed).startswith(f"closed {closed}  closed")
    wait_until(lambda: _shells(cli, ws)[exited]["state"] == "exited", interval=0.05, what="the shell to exit")
    table = _shell(cli, "list", ws)
    assert re.search(rf"^{exited}\s+exited\s+3\s+120x32\s+/workspace\s", table, re.M), table
    assert re.search(rf"^{closed}\s+closed\s", table, re.M), table
    assert re.search(rf"^{running}\s+running\s", table, re.M), table


def test_shell_errors_have_codes_hints_and_exit_codes(shared_workspace: str, module_roost: RoostCli) -> None:
    cli, ws = module_roost, shared_workspace
    sh = _open(cli, ws)
    assert cli.json("workspace", "shell", "close", ws, sh)["state"] == "closed"

    error = cli.error(cli("workspace", "shell", "read", ws, "sh-00000000", "--json"), 3, "shell_not_found")
    assert "roost workspace shell list" in error["hint"]
    error = cli.error(cli("workspace", "shell", "write", ws, sh, "--input", "x", "--json"), 4, "shell_not_running")
    assert "shell open" in error["hint"]
    cli.error(
        cli("workspace", "shell", "resize", ws, sh, "--cols", "0", "--rows", "10", "--json"), 2, "invalid_argument"
    )

    bad_signal = cli("workspace", "shell", "signal", ws, sh, "--signal", "BOGUS")
    assert bad_signal.returncode == 2
    assert "invalid choice" in bad_signal.stderr and "INT" in bad_signal.stderr


@pytest.fixture(params=backends_here())
def backend_cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RoostCli]:
    """A CLI on each backend that runs here, with a home of its own."""
    cli = RoostCli(home_with_shared_images(tmp_path / "home"), backend=request.param)
    yield cli
    delete_leftovers(cli)


def test_write_and_wait_runs_a_command_and_read_waits_for_a_pattern_or_the_commands_end(
    backend_cli: RoostCli,
) -> None:
    cli = backend_cli
    ws = cli.create()
    sh = _open(cli, ws)
    ran = cli.json(
        "workspace", "shell", "write", ws, sh, "--input", "sleep 0.3; echo out-$((6*7)); false", "--and-wait", "--plain"
    )
    assert (ran["ended_by"], ran["exit_code"], ran["state"]) == ("command_done", 1, "running")
    assert ran["data"].endswith("out-42\n")
    text = cli("workspace", "shell", "write", ws, sh, "--input", "(exit 5)", "--and-wait", "--plain", check_rc=0)
    assert text.stdout.startswith("(exit 5)") and "command exited 5" in text.stderr

    start = _read(cli, ws, sh)["end"]
    _shell(cli, "write", ws, sh, "--input", "sleep 0.3; echo READY-$((1+1)); sleep 100")
    waited = cli.json(
        "workspace", "shell", "read", ws, sh, "--cursor", str(start), "--plain", "--until-pattern", "READY-[0-9]"
    )
    assert waited["ended_by"] == "pattern" and "READY-2" in waited["data"]
    _shell(cli, "signal", ws, sh)
    done = cli(
        "workspace",
        "shell",
        "read",
        ws,
        sh,
        "--cursor",
        str(start),
        "--until-command-done",
        "--timeout-ms",
        "60000",
        check_rc=0,
    )
    assert "command exited 130" in done.stderr

    bad = cli.error(cli("workspace", "shell", "read", ws, sh, "--until-pattern", "(", "--json"), 2, "invalid_argument")
    assert "regular expression" in bad["message"]
    both = cli("workspace", "shell", "read", ws, sh, "--until-pattern", "x", "--until-command-done")
    assert both.returncode == 2 and "not allowed with" in both.stderr
