"""The argument checks every face goes through: bad values are invalid_argument with a hint naming
the valid range, good values (bounds included) come back typed."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost import arguments
from roost.errors import InvalidArgument
from roost.workspace.readiness import Readiness

# Values no numeric parameter accepts, whatever its range: non-finite, absurdly large,
# booleans (an int in Python), strings, None where a number is required, containers.
NOT_NUMBERS = [math.inf, -math.inf, math.nan, 1e308, 2**64, -(2**64), True, False, "5", "", None, [1], b"1"]

CHECKS: dict[str, Callable[[Any], object]] = {
    "ttl": arguments.ttl_seconds,
    "exec timeout": arguments.exec_timeout,
    "stop grace": arguments.stop_grace,
    "offset": arguments.file_offset,
    "read size": lambda v: arguments.read_size(v, "max_bytes", 1024),
    "port": arguments.port,
    "cols": lambda v: arguments.terminal_size(v, 24),
    "rows": lambda v: arguments.terminal_size(80, v),
    "vcpus": lambda v: arguments.resources(v, None),
    "mem-mib": lambda v: arguments.resources(None, v),
    "count": lambda v: arguments.optional_count(v, "tail", 100, low=0),
}
# The optional ones take None as "not given".
OPTIONAL = {"exec timeout", "stop grace", "vcpus", "mem-mib", "count"}


def _refused(check: Callable[[Any], object], value: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        check(value)
    assert info.value.code in ("invalid_argument", "read_too_large"), info.value.code
    assert info.value.hint, info.value.message
    return info.value


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_every_numeric_check_refuses_values_that_are_not_numbers_in_range(kind: str) -> None:
    for value in NOT_NUMBERS:
        if value is None and kind in OPTIONAL:
            continue
        _refused(CHECKS[kind], value)


@pytest.mark.parametrize(
    ("check", "low", "high"),
    [
        (arguments.ttl_seconds, 1, arguments.MAX_TTL_SECONDS),
        (arguments.file_offset, 0, 2**63 - 1),
        (arguments.port, 1, 65535),
        (lambda v: arguments.terminal_size(v, 24)[0], 1, 1000),
        (lambda v: arguments.resources(v, None)["vcpus"], 1, arguments.MAX_VCPUS),
        (lambda v: arguments.resources(None, v)["mem_mib"], arguments.MIN_MEM_MIB, arguments.MAX_MEM_MIB),
    ],
)
def test_whole_numbers_take_both_bounds_and_refuse_one_past_each_naming_the_range(
    check: Callable[[Any], int], low: int, high: int
) -> None:
    assert check(low) == low
    assert check(high) == high
    for outside in (low - 1, high + 1, float(low)):
        error = _refused(check, outside)
        assert f"{low} to {high}" in error.hint


def test_seconds_take_floats_and_ints_up_to_the_limit_and_refuse_zero_unless_it_means_at_once() -> None:
    assert arguments.exec_timeout(0.25) == 0.25
    assert arguments.exec_timeout(arguments.MAX_EXEC_TIMEOUT_S) == arguments.MAX_EXEC_TIMEOUT_S
    assert arguments.exec_timeout(None) is None
    for value in (0, 0.0, -0.0, -1, arguments.MAX_EXEC_TIMEOUT_S + 0.5):
        error = _refused(arguments.exec_timeout, value)
        assert str(arguments.MAX_EXEC_TIMEOUT_S) in error.hint
    # A grace of 0 kills at once; -0.0 is the same zero, not a negative number.
    assert arguments.stop_grace(0) == 0.0
    grace = arguments.stop_grace(-0.0)
    assert grace is not None
    assert math.copysign(1.0, grace) == 1.0
    _refused(arguments.stop_grace, -0.001)


def test_read_sizes_above_the_per_call_limit_are_read_too_large_with_a_paging_hint() -> None:
    assert arguments.read_size(1024, "max_bytes", 1024) == 1024
    error = _refused(lambda v: arguments.read_size(v, "max_bytes", 1024), 1025)
    assert error.code == "read_too_large"
    assert "offset" in error.hint
    assert _refused(lambda v: arguments.read_size(v, "max_bytes", 1024), -1).code == "invalid_argument"


@given(st.integers())
def test_an_offset_is_accepted_exactly_when_a_seek_can_reach_it(value: int) -> None:
    if 0 <= value < 2**63:
        assert arguments.file_offset(value) == value
    else:
        _refused(arguments.file_offset, value)


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ws-", "ws-1", "ws-0123456789", "ws-web"])
def test_a_workspace_name_starting_with_ws_is_refused_as_it_would_read_as_an_id(name: str) -> None:
    error = _refused(arguments.workspace_name, name)
    assert "ws-" in error.hint


@pytest.mark.parametrize("name", ["", "Web", "a b", "-web", "x" * 64, "web\x1b", 5, None])
def test_a_malformed_workspace_name_is_refused(name: object) -> None:
    _refused(arguments.workspace_name, name)


@pytest.mark.parametrize("name", ["web", "e2e", "cafe", "2024", "wsx", "w-s", "a" * 63])
def test_names_that_do_not_start_with_ws_are_fine_even_when_they_are_hex(name: str) -> None:
    assert arguments.workspace_name(name) == name


def test_service_and_snapshot_names_follow_the_agents_grammar() -> None:
    assert arguments.service_name("web.1") == "web.1"
    assert arguments.snapshot_name("Before-Upgrade") == "Before-Upgrade"
    for bad in ("Web", "a b", "", "../x", 3):
        _refused(arguments.service_name, bad)
    for bad in ("a b", "", "../x", ".hidden"):
        _refused(arguments.snapshot_name, bad)


def test_labels_need_simple_keys_and_short_string_values() -> None:
    assert arguments.labels({"team/area": "core"}) == {"team/area": "core"}
    assert arguments.labels(None) == {}
    for bad in ({"": "v"}, {"a b": "v"}, {"k": 5}, {"k": "v" * 257}, ["k"], "k=v"):
        _refused(arguments.labels, bad)


# -- env, commands, paths -----------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [{"1A": "x"}, {"A=B": "x"}, {"": "x"}, {"A-B": "x"}, {"É": "x"}, {"A\0": "x"}, {"A": "x\0y"}, {"A": 5}, ["A=1"]],
)
def test_env_maps_need_posix_names_and_string_values_without_nul(env: object) -> None:
    _refused(arguments.env_vars, env)


def test_good_env_maps_pass_unchanged() -> None:
    env = {"PATH": "/bin", "_x1": "", "LANG": "C.UTF-8 with spaces=and equals"}
    assert arguments.env_vars(env) == env
    assert arguments.env_vars(None) == {}


@pytest.mark.parametrize("command", ["", "   ", [], [""], ["ls", "a\0b"], "echo\0", 5, [5], None])
def test_a_command_must_be_a_script_or_an_argv_without_nul(command: object) -> None:
    _refused(arguments.command, command)


def test_paths_must_be_non_empty_strings_without_nul() -> None:
    assert arguments.guest_path("src/x.py") == "src/x.py"
    for bad in ("", "a\0b", 5, None):
        _refused(arguments.guest_path, bad)
        _refused(lambda v: arguments.host_path(v, "seed_path"), bad)


# -- readiness specs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (Readiness(tcp="0"), "invalid_argument"),
        (Readiness(tcp="65536"), "invalid_argument"),
        (Readiness(tcp="99999999999999999999"), "invalid_argument"),
        (Readiness(tcp="-1"), "invalid_argument"),
        (Readiness(tcp="http"), "invalid_argument"),
        (Readiness(tcp="host:"), "invalid_argument"),
        (Readiness(tcp=":8000"), "invalid_argument"),
        (Readiness(tcp="bad host:8000"), "invalid_argument"),
        (Readiness(tcp="[not-v6]:8000"), "invalid_argument"),
        (Readiness(http="ftp://127.0.0.1/"), "invalid_argument"),
        (Readiness(http="file:///etc/passwd"), "invalid_argument"),
        (Readiness(http="http://"), "invalid_argument"),
        (Readiness(http="http://[::1"), "invalid_argument"),
        (Readiness(http="http://127.0.0.1:99999/"), "invalid_argument"),
        (Readiness(http="http://127.0.0.1/a b"), "invalid_argument"),
        (Readiness(file="/etc/passwd"), "path_outside_workspace"),
        (Readiness(file="../x"), "path_outside_workspace"),
        (Readiness(file="/workspace/../etc/x"), "path_outside_workspace"),
        (Readiness(file=""), "invalid_argument"),
        (Readiness(command="  "), "invalid_argument"),
        (Readiness(command="true\0"), "invalid_argument"),
        (Readiness(file="a", tcp="1"), "invalid_argument"),
        (Readiness(tcp="8000", timeout_s=math.nan), "invalid_argument"),
        (Readiness(tcp="8000", timeout_s=math.inf), "invalid_argument"),
        (Readiness(tcp="8000", timeout_s=0), "invalid_argument"),
        (Readiness(tcp="8000", interval_ms=0), "invalid_argument"),
        (Readiness(tcp="8000", interval_ms=True), "invalid_argument"),
        (Readiness(tcp="8000", interval_ms=2**64), "invalid_argument"),
    ],
)
def test_a_readiness_probe_that_cannot_work_is_refused_before_anything_starts(spec: Readiness, code: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        spec.to_probe()
    assert info.value.code == code
    assert info.value.hint


@pytest.mark.parametrize(
    ("spec", "cwd"),
    [
        (Readiness(tcp="8000"), None),
        (Readiness(tcp="127.0.0.1:8000"), None),
        (Readiness(tcp="[::1]:8000"), None),
        (Readiness(tcp="db.internal:5432"), None),
        (Readiness(http="localhost:8000/health"), None),
        (Readiness(http="https://[::1]:8443/"), None),
        (Readiness(file="ready"), None),
        (Readiness(file="../ready"), "/workspace/app"),
        (Readiness(file="/workspace/app/ready"), None),
        (Readiness(command="test -e x"), None),
    ],
)
def test_a_readiness_probe_that_can_work_goes_to_the_agent_unchanged(spec: Readiness, cwd: str | None) -> None:
    probe = spec.to_probe(cwd)
    assert probe is not None
    args = probe.to_wire()
    kind = next(k for k in ("file", "tcp", "http", "command") if getattr(spec, k) is not None)
    assert args[kind] == getattr(spec, kind)
    assert args["interval_s"] == spec.interval_ms / 1000


@pytest.mark.parametrize(
    "exclude",
    [
        "*.log",  # one string, not a list of them
        [""],
        ["   "],
        [3],
        ["a\nb"],
        ["nul\0"],
        ["[abc"],  # an unclosed bracket: git would never match it
        ["dir\\"],
        ["/workspace"],
        ["/workspace/"],
        ["x" * 513],
        ["*.tmp"] * 65,
    ],
)
def test_exclude_patterns_that_cannot_mean_anything_are_refused_with_a_hint(exclude: object) -> None:
    _refused(lambda v: arguments.ignore_spec(v, False, None, git_dir_default=True), exclude)


def test_exclude_patterns_read_a_workspace_path_as_anchored_and_never_as_a_comment() -> None:
    spec = arguments.ignore_spec(
        ["/workspace/build/", "!/workspace/build/keep", "#notes", "node_modules/"], True, None, git_dir_default=False
    )
    assert spec.exclude == ("/build/", "!/build/keep", "\\#notes", "node_modules/")
    assert (spec.gitignore, spec.include_git_dir) == (True, False)


def test_include_git_dir_takes_the_callers_default_unless_given() -> None:
    assert arguments.ignore_spec((), False, None, git_dir_default=True).include_git_dir is True
    assert arguments.ignore_spec((), False, None, git_dir_default=False).include_git_dir is False
    assert arguments.ignore_spec((), True, True, git_dir_default=False).include_git_dir is True
    _refused(lambda v: arguments.ignore_spec((), v, None, git_dir_default=True), "yes")
    _refused(lambda v: arguments.ignore_spec((), False, v, git_dir_default=True), 1)


def test_a_name_in_its_text_form_comes_back_native_and_a_malformed_one_is_refused_with_a_hint() -> None:
    odd = b"caf\xe9\x01.txt".decode("utf-8", "surrogateescape")
    assert arguments.name_from_text('"caf\\351\\001.txt"') == odd
    assert arguments.name_from_text("plain/name.txt") == "plain/name.txt"
    assert arguments.guest_path(arguments.name_from_text('"/workspace/caf\\351\\001.txt"')) == (
        '"/workspace/caf\\351\\001.txt"'
    )
    with pytest.raises(InvalidArgument) as caught:
        arguments.name_from_text('"caf\\351', "cwd")
    assert caught.value.code == "invalid_argument" and caught.value.message.startswith("cwd: ")
    assert caught.value.hint
