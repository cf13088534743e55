"""Root inside a sandbox has no power over the host: its ids are unprivileged host ids,
host-wide kernel knobs refuse its writes, the seccomp filter refuses what a workspace never
needs, and the host's keyrings are out of reach.

Probes are harmless whatever the outcome: files are opened for append and closed without a
write, and each system call gets arguments that would fail even where it is allowed (a NULL
pointer, an invalid flag, a path that does not exist), so a regression shows as a different
errno, never as a changed host.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import uuid

import pytest

from helpers import pids_with_env
from roost import Roost
from roost.backends.processes import WORKSPACE_MARKER
from roost.backends.sandbox.idmap import host_id_map

pytestmark = pytest.mark.integration


def _kernel_at_least(major: int, minor: int) -> bool:
    release = platform.release().split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


# Knobs of the whole host. Per-namespace ones (net.*, the uts and ipc ones, and pid_max
# since Linux 6.14) belong to the workspace's own namespaces and stay writable there.
HOST_KNOBS = (
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/panic",
    *(() if _kernel_at_least(6, 14) else ("/proc/sys/kernel/pid_max",)),
    "/proc/sys/kernel/randomize_va_space",
    "/proc/sys/kernel/poweroff_cmd",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/vm/drop_caches",
    "/proc/sys/fs/file-max",
    "/proc/sysrq-trigger",
)

# Opens each path for append (no byte is written) and reports what happened.
APPEND_PROBE = """
import json, sys
out = {}
for path in sys.argv[1:]:
    try:
        with open(path, "a"):
            out[path] = "opened"
    except OSError as exc:
        out[path] = exc.errno
print(json.dumps(out))
"""

# x86_64 numbers; every call is made so that it fails harmlessly even when allowed.
SYSCALL_PROBE = r"""
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    args = [ctypes.c_long(a) for a in args]
    if libc.syscall(ctypes.c_long(nr), *args) == -1:
        return ctypes.get_errno()
    return 0
out = {
    "keyctl": call(250, 0, -4, 0),            # KEYCTL_GET_KEYRING_ID of @u: works unless refused
    "add_key": call(248, 0, 0, 0, 0, 0),      # NULL type: EFAULT unless refused
    "request_key": call(249, 0, 0, 0, 0),
    "perf_event_open": call(298, 0, 0, -1, -1, 0),   # NULL attr: EFAULT unless refused
    "clock_settime": call(227, 0, 0),         # NULL timespec: EFAULT unless refused
    "bpf": call(321, 0, 0, 0),
    "userfaultfd": call(323, 0x7fffffff),     # invalid flags: EINVAL unless refused
    "unshare_user": call(272, 0x10000000),    # CLONE_NEWUSER: works unless refused
    "setns": call(308, -1, 0),                # bad fd: EBADF unless refused
    "mount": call(165, 0, 0, 0, 0, 0),
    "reboot": call(169, 0, 0, 0, 0),          # bad magic: EINVAL unless refused
    "swapon": call(167, 0, 0),
    "acct": call(163, 0),
    "init_module": call(175, 0, 0, 0),
    "kexec_load": call(246, 0, 0, 0, 0),
    "open_by_handle_at": call(304, -1, 0, 0),
    "io_uring_setup": call(425, 1, 0),        # NULL params: EFAULT unless refused
    "clone3": call(435, 0, 0),                # NULL args: EFAULT/EINVAL unless refused
}
print(json.dumps(out))
"""
REFUSED = {
    "keyctl": errno.EPERM,
    "add_key": errno.EPERM,
    "request_key": errno.EPERM,
    "perf_event_open": errno.EPERM,
    "clock_settime": errno.EPERM,
    "bpf": errno.EPERM,
    "userfaultfd": errno.EPERM,
    "unshare_user": errno.EPERM,
    "setns": errno.EPERM,
    "mount": errno.EPERM,
    "reboot": errno.EPERM,
    "swapon": errno.EPERM,
    "acct": errno.EPERM,
    "init_module": errno.EPERM,
    "kexec_load": errno.EPERM,
    "open_by_handle_at": errno.EPERM,
    "io_uring_setup": errno.ENOSYS,
    "clone3": errno.ENOSYS,
}
x86_64_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="the probe uses x86_64 syscall numbers")


def _json(roost: Roost, ws_id: str, script: str, *args: str) -> dict[str, object]:
    result = roost.workspace(ws_id).exec(["python3", "-c", script, *args])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_workspace_root_is_an_unprivileged_host_id(sandbox: Roost) -> None:
    ws = sandbox.create_workspace("debian:12")
    ws.exec(["sh", "-c", "setsid sleep 60 >/dev/null 2>&1 &"])
    inside = ws.exec(["id", "-u"]).stdout.strip()
    assert inside == "0"
    # On the host, the same processes run as the namespace's mapped id, never as 0.
    host_uids = set()
    for pid in pids_with_env(WORKSPACE_MARKER, ws.id):
        with open(f"/proc/{pid}/status") as fh:
            uid_line = next(line for line in fh if line.startswith("Uid:"))
        host_uids.update(int(v) for v in uid_line.split()[1:])
    expected_root = host_id_map().root_uid
    assert expected_root in host_uids
    if os.geteuid() == 0:
        assert 0 not in host_uids
    protections = {p.name: p for p in ws.info().protections}
    assert protections["user_namespace"].active
    assert str(expected_root) in protections["user_namespace"].detail


def test_host_wide_kernel_knobs_refuse_writes_from_workspace_root(sandbox: Roost) -> None:
    ws = sandbox.create_workspace("debian:12")
    outcome = _json(sandbox, ws.id, APPEND_PROBE, *HOST_KNOBS)
    opened = [path for path, result in outcome.items() if result == "opened"]
    assert opened == [], f"writable from inside the sandbox: {opened}"
    assert all(result in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT) for result in outcome.values())
    # /sys is not there to write to at all.
    assert ws.exec(["sh", "-c", "ls -A /sys | wc -l"]).stdout.strip() == "0"


@x86_64_only
def test_seccomp_refuses_what_a_workspace_never_needs(sandbox: Roost) -> None:
    ws = sandbox.create_workspace("debian:12")
    outcome = _json(sandbox, ws.id, SYSCALL_PROBE)
    wrong = {name: (outcome[name], want) for name, want in REFUSED.items() if outcome[name] != want}
    assert wrong == {}, f"(got, wanted) errno per syscall: {wrong}"
    lines = ws.exec(["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"]).stdout.splitlines()
    status = dict(line.split(":\t") for line in lines)
    assert status == {"Seccomp": "2", "NoNewPrivs": "1"}
    # Ordinary work is untouched by the filter.
    assert ws.exec(["sh", "-c", "mkdir -p /tmp/a && cp /etc/hostname /tmp/a/ && cat /tmp/a/hostname"]).exit_code == 0


@x86_64_only
def test_the_syscall_probe_tells_refused_from_allowed(mock: Roost) -> None:
    """Control: without the filter (mock runs host processes) the same probe gets the
    kernel's own answers, so the sandbox test above fails if the filter goes missing."""
    ws = mock.create_workspace("debian:12")
    outcome = _json(mock, ws.id, SYSCALL_PROBE)
    assert outcome["clock_settime"] == errno.EFAULT
    assert outcome["io_uring_setup"] == errno.EFAULT
    assert outcome["userfaultfd"] == errno.EINVAL


def test_host_keyring_is_out_of_reach(sandbox: Roost) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    description = f"roost-test-{uuid.uuid4().hex}".encode()
    payload = b"not for workspaces"
    key_user_keyring = -4
    key = libc.syscall(248, b"user", description, payload, len(payload), key_user_keyring)
    if key == -1:
        pytest.skip(f"cannot add a key on the host: {os.strerror(ctypes.get_errno())}")
    try:
        ws = sandbox.create_workspace("debian:12")
        listed = ws.exec(["sh", "-c", "cat /proc/keys 2>/dev/null || true"]).stdout
        assert description.decode() not in listed
        probe = "import ctypes; l=ctypes.CDLL(None, use_errno=True); r=l.syscall(250, 11, %d, 0, 0); print(r, ctypes.get_errno())"
        result = ws.exec(["python3", "-c", probe % key])  # KEYCTL_READ of the host's key
        assert result.stdout.split() == ["-1", str(errno.EPERM)]
    finally:
        libc.syscall(250, 3, key)  # KEYCTL_REVOKE
        libc.syscall(250, 9, key, key_user_keyring)  # KEYCTL_UNLINK
