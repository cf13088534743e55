"""Bad input through the CLI: every bad value is a clear `invalid_argument` (never `internal`), a refused
create leaves nothing behind, and human output never hands a control character to the terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from roost.cli.main import main
from roost.protocol.names import from_text

if TYPE_CHECKING:
    from cli_helpers import RoostCli

pytestmark = pytest.mark.e2e

HUGE = "99999999999999999999"  # 2**66 and change: past every int64


def _bad(*call: str, code: str = "invalid_argument") -> tuple[list[str], str]:
    """A call that must be refused with `code` (exit 2), `--json` added before any `--`."""
    split = call.index("--") if "--" in call else len(call)
    return [*call[:split], "--json", *call[split:]], code


# Every entry point of the CLI with the bad values that reach it as they are typed (argparse turns
# most into int or float first); test_arguments.py feeds each check the whole table of values.
# WS and SH stand for the shared workspace and a shell open in it.
BAD_CALLS: list[tuple[list[str], str]] = [
    _bad("workspace", "update", "WS", "--ttl", "0"),
    _bad("workspace", "update", "WS", "--ttl", HUGE),
    _bad("workspace", "update", "WS", "--ttl", "1e308"),
    _bad("workspace", "update", "WS", "--name", "ws-other"),
    _bad("workspace", "update", "WS", "--label", "a b=c"),
    _bad("workspace", "exec", "WS", "--timeout", "nan", "--", "true"),
    _bad("workspace", "exec", "WS", "--timeout", "inf", "--", "true"),
    _bad("workspace", "exec", "WS", "--timeout", "-0", "--", "true"),
    _bad("workspace", "exec", "WS", "--timeout", "-1", "--", "true"),
    _bad("workspace", "exec", "WS", "--timeout", "1e308", "--", "true"),
    _bad("workspace", "exec", "WS", "--env", "1A=x", "--", "true"),
    _bad("workspace", "exec", "WS", "--env", "A-B=x", "--", "true"),
    _bad("workspace", "exec", "WS", "--cwd", "", "--", "true"),
    _bad("workspace", "logs", "WS", "--limit", "0"),
    _bad("workspace", "logs", "WS", "--exec", "0"),
    _bad("workspace", "logs", "WS", "--exec", "1", "--offset", HUGE),
    _bad("workspace", "logs", "WS", "--exec", "1", "--max-bytes", "-1"),
    _bad("workspace", "file", "read", "WS", "seeded.txt", "--offset", "-1"),
    _bad("workspace", "file", "read", "WS", "seeded.txt", "--offset", HUGE),
    _bad("workspace", "file", "read", "WS", "seeded.txt", "--max-bytes", "-1"),
    _bad("workspace", "file", "read", "WS", "seeded.txt", "--max-bytes", HUGE, code="read_too_large"),
    _bad("workspace", "file", "write", "WS", "x.txt", "--content", "x", "--mode", "77777"),
    _bad("workspace", "shell", "open", "WS", "--cols", "0"),
    _bad("workspace", "shell", "open", "WS", "--rows", HUGE),
    _bad("workspace", "shell", "open", "WS", "--env", "=x"),
    _bad("workspace", "shell", "read", "WS", "SH", "--cursor", "-1"),
    _bad("workspace", "shell", "read", "WS", "SH", "--cursor", HUGE),
    _bad("workspace", "shell", "read", "WS", "SH", "--max-bytes", "0"),
    _bad("workspace", "shell", "read", "WS", "SH", "--wait-for-idle-ms", "-1"),
    _bad("workspace", "shell", "read", "WS", "SH", "--wait-for-idle-ms", "10", "--timeout-ms", HUGE),
    _bad("workspace", "shell", "resize", "WS", "SH", "--cols", "1001", "--rows", "24"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-timeout", "nan", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-timeout", "inf", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-timeout", "0", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-timeout", "1e308", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-interval-ms", HUGE, "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-tcp", "70000", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-tcp", "0", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-tcp", "host:", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-http", "ftp://127.0.0.1/", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-http", "http://:0/", "--", "sleep", "60"),
    _bad(
        "workspace",
        "service",
        "start",
        "WS",
        "svc",
        "--ready-file",
        "/etc/passwd",
        "--",
        "sleep",
        "60",
        code="path_outside_workspace",
    ),
    _bad("workspace", "service", "start", "WS", "svc", "--ready-command", " ", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "svc", "--env", "1A=x", "--", "sleep", "60"),
    _bad("workspace", "service", "start", "WS", "Bad Name", "--", "sleep", "60"),
    _bad("workspace", "service", "logs", "WS", "svc", "--tail", "-1"),
    _bad("workspace", "service", "stop", "WS", "svc", "--timeout", "-1"),
    _bad("workspace", "service", "stop", "WS", "svc", "--timeout", "nan"),
    _bad("workspace", "diff", "WS", "--max-bytes", "0"),
    _bad("workspace", "diff", "WS", "--against", "../baseline"),
    _bad("workspace", "snapshot", "create", "WS", "a b"),
    _bad("run", "debian:12", "--backend", "mock", "--timeout", "nan", "--", "true"),
    _bad("run", "debian:12", "--backend", "mock", "--env", "1A=x", "--", "true"),
    _bad("run", "debian:12", "--backend", "mock", "--mem-mib", HUGE, "--", "true"),
    _bad("run", "debian:12", "--backend", "mock", "--network", "open", "--", "true"),
    _bad("run", "debian:12", "--backend", "mock", "--network", "allowlist", "--allow-host", "@cargo", "--", "true"),
    _bad("run", "debian:12", "--backend", "mock", "--network", "egress", "--", "true", code="network_unsupported"),
    _bad("workspace", "create", "debian:12", "--network-policy", "open"),
    _bad("workspace", "create", "debian:12", "--network-policy", "allowlist", "--allow-host", "bad_host!"),
    _bad("workspace", "create", "debian:12", "--network-policy", "allowlist", "--allow-host", "10.0.0.1/8"),
    _bad("workspace", "create", "debian:12", "--network-policy", "allowlist", "--allow-host", "pypi.org:70000"),
    _bad("workspace", "create", "debian:12", "--network-policy", "egress", "--allow-host", "pypi.org"),
    _bad("workspace", "create", "debian:12", "--publish", "70000"),
    _bad("workspace", "create", "debian:12", "--publish", "0.0.0.0:8000:80"),
    _bad("workspace", "create", "debian:12", "--publish", "8000", "--publish", "18000:8000"),
    _bad(
        "workspace",
        "create",
        "debian:12",
        "--backend",
        "mock",
        "--network-policy",
        "allowlist",
        code="network_unsupported",
    ),
    _bad("workspace", "create", "debian:12", "--backend", "mock", "--publish", "8000", code="network_unsupported"),
    _bad("mcp", "serve", "--port", "70000"),
]

CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _run_all(roost: RoostCli, calls: list[list[str]], at_once: int = 6) -> list[subprocess.CompletedProcess[str]]:
    """Run the calls a few at a time (they do not depend on each other) and collect every outcome."""
    done: list[subprocess.CompletedProcess[str]] = []
    for start in range(0, len(calls), at_once):
        running = [roost.popen(*call) for call in calls[start : start + at_once]]
        done += map(roost.finish, running)
    return done


@pytest.fixture
def shell_id(module_roost: RoostCli, shared_workspace: str) -> Iterator[str]:
    shell = module_roost.json("workspace", "shell", "open", shared_workspace)["id"]
    yield shell
    module_roost("workspace", "shell", "close", shared_workspace, shell)


def test_every_bad_value_is_invalid_argument_with_a_hint_and_changes_nothing(
    module_roost: RoostCli, shared_workspace: str, shell_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In process, for speed: the same parse, SDK call and error printing as `python -m roost`,
    # without paying an interpreter start per row (the other tests here run the real process).
    before = module_roost.record(shared_workspace)
    for call, code in BAD_CALLS:
        argv = ["--home", str(module_roost.home)]
        argv += [{"WS": shared_workspace, "SH": shell_id}.get(part, part) for part in call]
        exit_code = main(argv)
        out, err = capsys.readouterr()
        assert (exit_code, out) == (2, ""), f"{call}: exit {exit_code}, stdout {out!r}, stderr {err!r}"
        error = json.loads(err.splitlines()[-1])["error"]
        assert error["code"] == code, f"{call}: {error}"
        assert error["message"] and error["hint"], f"{call}: {error}"

    after = module_roost.record(shared_workspace)
    assert {k: after[k] for k in ("name", "labels", "ttl_seconds", "exec_count")} == {
        k: before[k] for k in ("name", "labels", "ttl_seconds", "exec_count")
    }
    assert module_roost.json("workspace", "service", "list", shared_workspace)["services"] == []
    assert [s["id"] for s in module_roost.json("workspace", "shell", "list", shared_workspace)["shells"]] == [shell_id]
    assert module_roost.workspace_dirs() == [shared_workspace]


# -- refused creates ------------------------------------------------------------------


def test_every_refused_create_leaves_the_list_and_the_disk_as_they_were(roost: RoostCli, tmp_path: Path) -> None:
    kept = roost.create("--name", "taken", "--label", "team=core")
    listed = roost.json("workspace", "list")
    not_a_seed = tmp_path / "no-such-dir"
    refused: list[tuple[list[str], int, str]] = [
        (["--name", "ws-0123456789"], 2, "invalid_argument"),
        (["--name", "ws-web"], 2, "invalid_argument"),
        (["--name", "Not Valid"], 2, "invalid_argument"),
        (["--name", "taken"], 4, "name_taken"),
        (["--label", "bad key=v"], 2, "invalid_argument"),
        (["--ttl", "0"], 2, "invalid_argument"),
        (["--ttl", "-5"], 2, "invalid_argument"),
        (["--ttl", HUGE], 2, "invalid_argument"),
        (["--ttl", "1e308"], 2, "invalid_argument"),
        (["--ttl", "inf"], 2, "invalid_argument"),
        (["--vcpus", "0"], 2, "invalid_argument"),
        (["--vcpus", HUGE], 2, "invalid_argument"),
        (["--mem-mib", "1"], 2, "invalid_argument"),
        (["--mem-mib", HUGE], 2, "invalid_argument"),
        (["--seed-path", str(not_a_seed)], 3, "seed_not_found"),
        (["--backend", "nosuch"], 2, "unknown_backend"),
    ]
    calls = [["workspace", "create", "debian:12", *options, "--json"] for options, _, _ in refused]
    calls.append(["workspace", "create", "NoSuch:1", "--json"])
    expected = [(rc, code) for _, rc, code in refused] + [(3, "env_not_found")]
    for proc, (rc, code) in zip(_run_all(roost, calls), expected, strict=True):
        roost.error(proc, rc, code)

    assert roost.json("workspace", "list") == listed
    assert roost.workspace_dirs() == [kept]


# -- what a terminal is shown ------------------------------------------------------------


def test_human_output_escapes_control_characters_in_names_labels_and_commands(roost: RoostCli) -> None:
    ws = roost.create("--label", "note=\x1b]0;owned\x07")
    # Names a workspace may give its files: a screen clear, a C1 CSI, a bidi override, a bell, and
    # a byte that is not UTF-8; a symlink whose target is an escape sequence.
    script = (
        "printf 1 > \"$(printf '\\033[2Jclear')\"; printf 2 > \"$(printf 'c1\\302\\233x')\"; "
        "printf 3 > \"$(printf '\\342\\200\\256txt.exe')\"; printf 4 > \"$(printf 'bell\\007')\"; "
        "printf 5 > \"$(printf 'raw\\377')\"; ln -s \"$(printf '\\033[31mred')\" link"
    )
    roost("workspace", "exec", ws, "-c", script, check_rc=0)
    roost("workspace", "exec", ws, "--", "echo", "\x1b[2J", check_rc=0)
    roost("workspace", "service", "start", ws, "web\x1bx", "--", "true")  # refused: a bad name

    views = {
        "file list": roost("workspace", "file", "list", ws, check_rc=0),
        "diff --stat": roost("workspace", "diff", ws, "--stat", check_rc=0),
        "diff": roost("workspace", "diff", ws, check_rc=0),
        "list": roost("workspace", "list", check_rc=0),
        "status": roost("workspace", "status", ws, check_rc=0),
        "logs": roost("workspace", "logs", ws, check_rc=0),
        "bad service": roost("workspace", "service", "start", ws, "web\x1bx", "--", "true"),
    }
    # A patch's hunks are file content, printed as is (like git diff); its path headers are quoted.
    patch = views.pop("diff").stdout
    headers = [line for line in patch.splitlines() if line.startswith(("diff --git ", "--- ", "+++ "))]
    assert len(headers) == 3 * 6
    assert not CONTROL.search("\n".join(headers)), headers
    for what, proc in views.items():
        for stream in (proc.stdout, proc.stderr):
            assert not CONTROL.search(stream), f"{what}: {stream!r}"
    assert "\\x1b[2Jclear" in views["file list"].stdout
    assert "raw\\xff" in views["diff --stat"].stdout
    assert '+++ "b/\\033[2Jclear"' in headers  # quoted as git quotes it
    assert "\\x1b]0;owned\\x07" in views["status"].stdout

    # --json keeps every name exact: quoted as git quotes names, so its bytes come back.
    names = {entry["name"] for entry in roost.json("workspace", "file", "list", ws)["entries"]}
    assert '"\\033[2Jclear"' in names and '"raw\\377"' in names
    assert {os.fsencode(from_text(name)) for name in names} >= {b"\x1b[2Jclear", b"raw\xff"}
    assert json.loads(roost("workspace", "status", ws, "--json").stdout)["labels"] == {"note": "\x1b]0;owned\x07"}
