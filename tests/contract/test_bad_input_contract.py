"""Bad input through the SDK on every backend: each parameter, fed the whole table of bad values, raises
a refusal with a hint (never another exception, never `internal`); nothing is created or started.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from roost import Roost, RoostError, Workspace
from roost.client import Readiness

# Python callers can pass anything: non-finite and past-int64 numbers, booleans (ints in Python!),
# text, containers.
BAD_NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, 1e308, 2**64, -(2**64), True, False, "5", [1], b"1"]
REFUSALS = {"invalid_argument", "read_too_large"}

Call = Callable[[Workspace, str, Any], object]
# Each takes the workspace, an open shell's id and the bad value.
PARAMETERS: dict[str, Call] = {
    "update ttl_seconds": lambda ws, sh, v: ws.update(ttl_seconds=v),
    "exec timeout": lambda ws, sh, v: ws.exec("true", timeout=v),
    "exec max_output_bytes": lambda ws, sh, v: ws.exec("true", max_output_bytes=v),
    "logs limit": lambda ws, sh, v: ws.logs(v),
    "exec_output exec_id": lambda ws, sh, v: ws.exec_output(v),
    "exec_output offset": lambda ws, sh, v: ws.exec_output(1, offset=v),
    "exec_output max_bytes": lambda ws, sh, v: ws.exec_output(1, max_bytes=v),
    "files.read offset": lambda ws, sh, v: ws.files.read("note.txt", offset=v),
    "files.read max_bytes": lambda ws, sh, v: ws.files.read("note.txt", max_bytes=v),
    "files.write mode": lambda ws, sh, v: ws.files.write("mode.txt", "x", mode=v),
    "shells.open cols": lambda ws, sh, v: ws.shells.open(cols=v),
    "shells.open rows": lambda ws, sh, v: ws.shells.open(rows=v),
    "shells.read cursor": lambda ws, sh, v: ws.shells.read(sh, cursor=v),
    "shells.read max_bytes": lambda ws, sh, v: ws.shells.read(sh, max_bytes=v),
    "shells.read wait_for_idle_ms": lambda ws, sh, v: ws.shells.read(sh, wait_for_idle_ms=v),
    "shells.read timeout_ms": lambda ws, sh, v: ws.shells.read(sh, wait_for_idle_ms=1, timeout_ms=v),
    "shells.resize cols": lambda ws, sh, v: ws.shells.resize(sh, v, 24),
    "services.start ready timeout": lambda ws, sh, v: ws.services.start(
        "svc", "sleep 60", ready=Readiness(tcp="9", timeout_s=v)
    ),
    "services.start ready interval": lambda ws, sh, v: ws.services.start(
        "svc", "sleep 60", ready=Readiness(tcp="9", interval_ms=v)
    ),
    "services.logs tail": lambda ws, sh, v: ws.services.logs("svc", tail=v),
    "services.stop timeout": lambda ws, sh, v: ws.services.stop("svc", timeout=v),
    "diff max_bytes": lambda ws, sh, v: ws.diff(max_bytes=v),
}


def _with_probe(**probe: Any) -> Callable[[Workspace], object]:
    """Start a service with the readiness probe `probe`."""
    return lambda ws: ws.services.start("svc", "sleep 60", ready=Readiness(**probe))


OTHER_BAD_CALLS: dict[str, tuple[Callable[[Workspace], object], str]] = {
    "exec env name": (lambda ws: ws.exec("true", env={"1A": "x"}), "invalid_argument"),
    "exec env NUL": (lambda ws: ws.exec("true", env={"A": "x\0y"}), "invalid_argument"),
    "exec env not a map": (lambda ws: ws.exec("true", env=["A=1"]), "invalid_argument"),  # type: ignore[arg-type]
    "exec argv NUL": (lambda ws: ws.exec(["ls", "a\0b"]), "invalid_argument"),
    "exec blank": (lambda ws: ws.exec("  "), "invalid_argument"),
    "exec cwd NUL": (lambda ws: ws.exec("true", cwd="a\0b"), "invalid_argument"),
    "read path NUL": (lambda ws: ws.files.read("a\0b"), "invalid_argument"),
    "shell env": (lambda ws: ws.shells.open(env={"A=B": "x"}), "invalid_argument"),
    "service name": (lambda ws: ws.services.start("Bad Name", "sleep 60"), "invalid_argument"),
    "service env": (lambda ws: ws.services.start("svc", "sleep 60", env={"": "x"}), "invalid_argument"),
    "service restart": (lambda ws: ws.services.start("svc", "sleep 60", restart="sometimes"), "invalid_argument"),
    "ready port 0": (_with_probe(tcp="0"), "invalid_argument"),
    "ready port 70000": (_with_probe(tcp="127.0.0.1:70000"), "invalid_argument"),
    "ready url scheme": (_with_probe(http="ftp://127.0.0.1/"), "invalid_argument"),
    "ready url host": (_with_probe(http="http:///x"), "invalid_argument"),
    "ready file outside": (_with_probe(file="../../etc/passwd"), "path_outside_workspace"),
    "ready command blank": (_with_probe(command=" "), "invalid_argument"),
    "snapshot name": (lambda ws: ws.snapshots.create("a b"), "invalid_argument"),
    "diff against": (lambda ws: ws.diff(against="../baseline"), "invalid_argument"),
    "rename to an id": (lambda ws: ws.update(name="ws-0123456789"), "invalid_argument"),
    "remove_labels as one string": (lambda ws: ws.update(remove_labels="team"), "invalid_argument"),
}


def _refused(call: Callable[[], object], what: str) -> RoostError:
    try:
        call()
    except RoostError as exc:
        assert exc.code != "internal", (what, exc.message)
        assert exc.hint, (what, exc.message)
        return exc
    raise AssertionError(f"{what} was accepted")


def test_every_parameter_refuses_every_bad_number(workspace: Workspace) -> None:
    workspace.files.write("note.txt", "hello\n")
    shell = workspace.shells.open().id
    execs_before = workspace.info().exec_count
    for name, call in PARAMETERS.items():
        for value in BAD_NUMBERS:
            error = _refused(lambda call=call, value=value: call(workspace, shell, value), f"{name}={value!r}")
            assert error.code in REFUSALS, (name, value, error.code, error.message)
    assert workspace.services.list() == []
    assert [s.id for s in workspace.shells.list()] == [shell]
    assert workspace.info().exec_count == execs_before


def test_every_other_bad_argument_is_refused_before_anything_starts(workspace: Workspace) -> None:
    for name, (call, code) in OTHER_BAD_CALLS.items():
        error = _refused(lambda call=call: call(workspace), name)
        assert error.code == code, (name, error.code, error.message)
    assert workspace.services.list() == []
    assert workspace.shells.list() == []
    assert workspace.info().exec_count == 0


CREATE_OPTIONS: dict[str, dict[str, Any]] = {
    **{f"ttl_seconds={v!r}": {"ttl_seconds": v} for v in [0, -1, *BAD_NUMBERS]},
    **{f"vcpus={v!r}": {"vcpus": v} for v in [0, 10_000, *BAD_NUMBERS]},
    **{f"mem_mib={v!r}": {"mem_mib": v} for v in [0, 1, *BAD_NUMBERS]},
    "name like an id": {"name": "ws-0123456789"},
    "name with ws- prefix": {"name": "ws-web"},
    "name not a string": {"name": 5},
    "labels not a map": {"labels": ["team=core"]},
    "label key": {"labels": {"a b": "c"}},
    "seed_path not a path": {"seed_path": 5},
    "env not a string": {"env": 5},
}


def test_a_refused_create_or_run_leaves_no_workspace_and_no_directory(roost: Roost) -> None:
    for name, given in CREATE_OPTIONS.items():
        options = dict(given)
        env = options.pop("env", "debian:12")
        error = _refused(lambda env=env, options=options: roost.create_workspace(env, **options), name)
        assert error.code == "invalid_argument", (name, error.message)
    made: list[str] = []
    for name, (command, kwargs) in {
        "run timeout": ("true", {"timeout": math.nan}),
        "run env": ("true", {"env_vars": {"1A": "x"}}),
        "run command": ("", {}),
        "run seed_path": ("true", {"seed_path": 3}),
        "run pids": ("true", {"pids": 0}),
    }.items():
        error = _refused(
            lambda command=command, kwargs=kwargs: roost.run(
                "debian:12", command, on_ready=lambda: made.append("a workspace"), **kwargs
            ),
            name,
        )
        assert error.code == "invalid_argument", (name, error.message)
    assert made == []  # refused before a workspace was made, not after
    assert roost.list_workspaces() == []
    assert not (roost.home / "workspaces").exists() or list((roost.home / "workspaces").iterdir()) == []
